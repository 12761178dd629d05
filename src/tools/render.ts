// Chat messages and tools → what a chat template sees, as llama.cpp passes them
// (common/chat.cpp: to_json_oaicompat, common_chat_tools_to_json_oaicompat), with
// minja's polyfills for a template that cannot show them (the generic fallback):
//   - tools it never prints → described in the system prompt;
//   - assistant tool_calls it never prints → the calls as JSON in the content;
//   - tool results it cannot show → a user message holding {"tool_response": …}.
// What a template can show is probed by rendering (chat.ts, toolCaps).
import type { ChatMessage, Tool } from '../api.ts';
import { UsageError } from '../errors.ts';

export interface ToolCaps {
  /** Prints the `tools` it is given. */
  tools: boolean;
  /** Prints an assistant message's tool_calls. */
  toolCalls: boolean;
  /** Reads tool_calls[].function.arguments as an object (else as JSON text). */
  objectArguments: boolean;
  /** Shows role 'tool' messages as tool results. */
  toolResponses: boolean;
}

/** The generic format's instruction (llama.cpp's common_chat_params_init_generic). */
export const GENERIC_PROMPT = 'Respond in JSON format, either with `tool_call` (a request to call tools) or with `response` reply to the user\'s request';

/** Tools as templates see them: {type, function: {name, description, parameters}}, description and parameters always present. */
export function templateTools(tools: Tool[]): Record<string, unknown>[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.function.name, description: t.function.description ?? '', parameters: t.function.parameters ?? {} } }));
}

/** The system text describing tools to a template that does not print them (minja's polyfill). */
export const toolsPrompt = (tools: Tool[]) => `You can call any of the following tools to satisfy the user's requests: ${JSON.stringify(templateTools(tools), null, 2)}`;

function parseArgs(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${where}: arguments are not JSON (${(e as Error).message}): pass the JSON text the call was made with`);
  }
}

/**
 * The messages as plain objects for the template: {role, content[, name][, tool_call_id][, tool_calls]},
 * with `system` (extra instructions) added to the system prompt, and the polyfills `caps` call for.
 */
export function templateMessages(messages: ChatMessage[], caps: ToolCaps, system: string[] = []): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = messages.map((m, i) => {
    const o: Record<string, unknown> = { role: m.role, content: m.content };
    if (m.role === 'tool' && !caps.toolResponses) {
      const response: Record<string, unknown> = {};
      if (m.name !== undefined) response.tool = m.name;
      response.content = m.content;
      if (m.toolCallId !== undefined) response.tool_call_id = m.toolCallId;
      return { role: 'user', content: JSON.stringify({ tool_response: response }, null, 2) };
    }
    if (m.name !== undefined) o.name = m.name;
    if (m.toolCallId !== undefined) o.tool_call_id = m.toolCallId;
    if (m.toolCalls?.length) {
      const calls = m.toolCalls.map((c, j) => ({ name: c.name, arguments: caps.objectArguments || !caps.toolCalls ? parseArgs(c.arguments, `message ${i} tool call ${j} (${c.name})`) : c.arguments, id: c.id }));
      if (!caps.toolCalls) {
        const obj: Record<string, unknown> = { tool_calls: calls };
        if (m.content !== '') obj.content = m.content;
        o.content = JSON.stringify(obj, null, 2);
      } else o.tool_calls = calls.map((c) => ({ type: 'function', function: { name: c.name, arguments: c.arguments }, id: c.id }));
    }
    return o;
  });
  const add = system.filter((s) => s !== '');
  if (add.length === 0) return out;
  const text = add.join('\n\n');
  // minja's add_system: append to the system message, or put one first.
  if (out[0]?.role === 'system') return [{ role: 'system', content: `${out[0].content}\n\n${text}` }, ...out.slice(1)];
  return [{ role: 'system', content: text }, ...out];
}

/** Checks a message's tool fields (one line per problem). */
export function checkToolFields(m: ChatMessage, i: number): void {
  if (m.toolCalls !== undefined) {
    if (!Array.isArray(m.toolCalls)) throw new UsageError(`message ${i} toolCalls must be an array of { id, name, arguments }`);
    if (m.role !== 'assistant' && m.toolCalls.length) throw new UsageError(`message ${i} (${m.role}) has toolCalls: only assistant messages make tool calls`);
    m.toolCalls.forEach((c, j) => {
      if (!c || typeof c.name !== 'string' || c.name === '') throw new UsageError(`message ${i} tool call ${j} has no name: pass { id, name, arguments }`);
      if (typeof c.arguments !== 'string') throw new UsageError(`message ${i} tool call ${j} (${c.name}): arguments must be JSON text (a string), e.g. '{"city": "Paris"}'`);
      if (typeof c.id !== 'string') throw new UsageError(`message ${i} tool call ${j} (${c.name}) has no id: pass the id the call came with`);
    });
  }
  for (const k of ['toolCallId', 'name'] as const) {
    if (m[k] !== undefined && typeof m[k] !== 'string') throw new UsageError(`message ${i} ${k} must be a string`);
  }
}
