// Field checks shared by the dialects: every bad field is a 400 naming it, and
// values are quoted by preview() (a value nested 10k deep must not become a 500).
import type { ChatMessage, ToolCall } from '../api.ts';
import { UsageError } from '../errors.ts';
import { compileResponseFormat } from '../grammar/index.ts';
import { checkTools, type ToolRequest } from '../tools/index.ts';
import { apiError, badType, kindOf, preview } from './errors.ts';

export type Body = Record<string, unknown>;

/** The body as an object, or 400. */
export function asObject(body: unknown): Body {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw apiError(400, `request body must be a JSON object, got ${kindOf(body)}`, 'invalid_body');
  return body as Body;
}

/** `label`: the field's name in messages (e.g. options.temperature). */
export function optNumber(body: Body, key: string, r: { min: number; max: number; integer?: boolean }, field = key): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  const want = `${r.integer ? 'an integer' : 'a number'} in ${r.min}..${r.max}`;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badType(field, want, v);
  if ((r.integer && !Number.isInteger(v)) || v < r.min || v > r.max) throw apiError(400, `'${field}' must be ${want}, got ${v}`, 'invalid_value', field);
  return v;
}

export function optBool(body: Body, key: string, field = key): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badType(field, 'a boolean', v);
  return v;
}

export function parseStop(v: unknown, field = 'stop'): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw badType(field, 'a string or an array of strings', v);
  if (v.length > 16) throw apiError(400, `'${field}' has ${v.length} strings; at most 16 are allowed`, 'invalid_value', field);
  const list = (v as string[]).filter((s) => s !== '');
  return list.length ? list : undefined;
}

function parseContent(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (!Array.isArray(v)) throw badType(field, 'a string or an array of text parts', v);
  return v.map((part, j) => {
    const p = part as Body;
    if (!p || typeof p !== 'object' || p.type !== 'text' || typeof p.text !== 'string') {
      throw apiError(400, `'${field}[${j}]' is a ${p && typeof p === 'object' && 'type' in p ? preview(p.type) : kindOf(p)} part; only {type: "text", text} parts are supported`, 'invalid_value', `${field}[${j}]`);
    }
    return p.text;
  }).join('');
}

/** An assistant message's OpenAI tool_calls → ChatMessage.toolCalls (arguments as JSON text; an object is accepted too). */
function parseToolCalls(v: unknown, f: string): ToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badType(f, 'an array of {id, type: "function", function: {name, arguments}}', v);
  return v.map((c, j) => {
    const g = `${f}[${j}]`;
    if (!c || typeof c !== 'object' || Array.isArray(c)) throw badType(g, 'an object {id, type: "function", function: {name, arguments}}', c);
    const { id, type, function: fn } = c as Body;
    if (type !== undefined && type !== 'function') throw apiError(400, `'${g}.type' is ${preview(type)}; only "function" tool calls are supported`, 'invalid_value', `${g}.type`);
    if (typeof id !== 'string') throw badType(`${g}.id`, 'a string', id);
    if (!fn || typeof fn !== 'object' || Array.isArray(fn)) throw badType(`${g}.function`, 'an object {name, arguments}', fn);
    const { name, arguments: args } = fn as Body;
    if (typeof name !== 'string' || name === '') throw badType(`${g}.function.name`, 'a non-empty string', name);
    if (typeof args === 'string') return { id, name, arguments: args };
    if (args && typeof args === 'object' && !Array.isArray(args)) return { id, name, arguments: JSON.stringify(args) };
    throw badType(`${g}.function.arguments`, 'JSON text of an object', args);
  });
}

export function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined) throw apiError(400, "missing required field 'messages': send an array of {role, content}", 'missing_field', 'messages');
  if (!Array.isArray(v)) throw badType('messages', 'an array of {role, content}', v);
  if (v.length === 0) throw apiError(400, "'messages' is empty: send at least one message", 'invalid_value', 'messages');
  return v.map((m, i) => {
    const f = `messages[${i}]`;
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw badType(f, 'an object {role, content}', m);
    const { role, content, tool_calls, tool_call_id, name, reasoning_content } = m as Body;
    if (typeof role !== 'string') throw badType(`${f}.role`, 'a string', role);
    // `developer` is OpenAI's newer name for `system`.
    const r = role === 'developer' ? 'system' : role;
    if (r !== 'system' && r !== 'user' && r !== 'assistant' && r !== 'tool') {
      throw apiError(400, `'${f}.role' is ${preview(role)}; qllm supports system, developer, user, assistant and tool`, 'invalid_value', `${f}.role`);
    }
    if (content === undefined && r !== 'assistant') throw apiError(400, `missing required field '${f}.content'`, 'missing_field', `${f}.content`);
    const msg: ChatMessage = { role: r, content: parseContent(content, `${f}.content`) };
    if (r === 'assistant') {
      const calls = parseToolCalls(tool_calls, `${f}.tool_calls`);
      if (calls?.length) msg.toolCalls = calls;
      // A reasoning model's earlier thinking, as llama-server takes it back: the template decides what to show.
      if (reasoning_content !== undefined && reasoning_content !== null) {
        if (typeof reasoning_content !== 'string') throw badType(`${f}.reasoning_content`, 'a string', reasoning_content);
        if (reasoning_content !== '') msg.reasoning = reasoning_content;
      }
    }
    if (r === 'tool') {
      if (typeof tool_call_id !== 'string') throw badType(`${f}.tool_call_id`, 'a string (the id of the call this answers)', tool_call_id);
      msg.toolCallId = tool_call_id;
    }
    if (name !== undefined && name !== null) {
      if (typeof name !== 'string') throw badType(`${f}.name`, 'a string', name);
      if (r === 'tool') msg.name = name;
    }
    return msg;
  });
}

/** tools, tool_choice and parallel_tool_calls (undefined without tools); 400s name the field. */
export function parseTools(b: Body): ToolRequest | undefined {
  if (b.functions !== undefined || b.function_call !== undefined) {
    throw apiError(400, "'functions' and 'function_call' are OpenAI's deprecated form: send 'tools' and 'tool_choice'", 'not_supported', b.functions !== undefined ? 'functions' : 'function_call');
  }
  const choice = b.tool_choice ?? undefined;
  const parallel = optBool(b, 'parallel_tool_calls');
  const tools = b.tools ?? undefined;
  if (tools === undefined || (Array.isArray(tools) && tools.length === 0)) {
    if (choice !== undefined && choice !== 'none' && choice !== 'auto') throw apiError(400, "'tool_choice' needs 'tools': send the functions the model may call", 'invalid_value', 'tool_choice');
    return undefined;
  }
  if (!Array.isArray(tools)) throw badType('tools', 'an array of {type: "function", function: {name, description, parameters}}', tools);
  if (tools.length > 128) throw apiError(400, `'tools' has ${tools.length} functions; at most 128 are allowed`, 'invalid_value', 'tools');
  try {
    checkTools(tools, choice);
  } catch (e) {
    if (e instanceof UsageError) throw apiError(400, e.message, 'invalid_value', /^tool choice/.test(e.message) ? 'tool_choice' : 'tools');
    throw e;
  }
  return { tools, choice: choice as ToolRequest['choice'], parallel };
}

/** response_format → a grammar (and the schema, for a reply beside tools); undefined for plain text. */
export function parseResponseFormat(v: unknown): { grammar: string; schema: unknown } | undefined {
  let grammar: string | undefined;
  try {
    grammar = compileResponseFormat(v);
  } catch (e) {
    if (e instanceof UsageError) throw apiError(400, `'response_format': ${e.message}`, 'invalid_value', 'response_format');
    throw e;
  }
  if (grammar === undefined) return undefined;
  const r = v as { type: string; schema?: unknown; json_schema?: { schema?: unknown } };
  return { grammar, schema: (r.type === 'json_object' ? r.schema : r.json_schema?.schema) ?? {} };
}

