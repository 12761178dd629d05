// Tool calling, shared by chat() (model-api.ts) and `qllm serve` (serve/openai.ts):
//
//   planTools(templateSource, request, marker)  → the format, what the template
//       renders (tools, extra system text), the grammar of a forced call, and
//       how to read the reply back
//   parseReply(plan, text)                      → { content, toolCalls }
//   new ToolCallStream(plan.parse, plan.idKind) → the same, as streamed deltas
//
// Formats: format.ts. Parsing: parse.ts. Grammars: grammar.ts (src/grammar's JSON
// Schema compiler inside). Rendering: render.ts and tokenizer/chat.ts.
import type { ChatMessage, Tool, ToolCall, ToolChoice } from '../api.ts';
import { UsageError } from '../errors.ts';
import { detectToolFormat, formatMarkers, idPattern, type ToolFormat } from './format.ts';
import { lit, toolGrammar } from './grammar.ts';
import { type ParseOptions, parseToolOutput } from './parse.ts';
import { GENERIC_PROMPT } from './render.ts';
import { newCallId } from './stream.ts';

export { detectToolFormat, type ToolFormat } from './format.ts';
export { lit, prefixRules, toolGrammar } from './grammar.ts';
export { type ParsedCall, type ParsedOutput, parseToolOutput } from './parse.ts';
export { checkToolFields, templateMessages, templateTools, type ToolCaps } from './render.ts';
export { newCallId, type StreamDelta, ToolCallStream } from './stream.ts';

export interface ToolRequest {
  tools: Tool[];
  choice?: ToolChoice;
  parallel?: boolean;
  /** The reply's JSON schema (response_format): only the generic format can honour it beside tools. */
  responseSchema?: unknown;
}

export interface ToolPlan {
  format: ToolFormat;
  /** What the template gets: the tools (none for tool_choice 'none') and extra system instructions. */
  render: { tools?: Tool[]; system: string[] };
  /** GBNF the reply must follow (a forced call; the generic format always), if any. */
  grammar?: string;
  /** How to read the reply (undefined for tool_choice 'none': it is all text). */
  parse?: Omit<ParseOptions, 'partial'>;
  idKind: 'openai' | 'mistral9';
  /** Marker texts the decoder may print as nothing (control tokens): see markerTexts. */
  markers: string[];
}

const NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

/** Checks tools and tool_choice (one line per problem). */
export function checkTools(tools: unknown, choice: unknown): asserts tools is Tool[] {
  if (!Array.isArray(tools)) throw new UsageError('tools must be an array of { type: "function", function: { name, description, parameters } }');
  const seen = new Set<string>();
  tools.forEach((t, i) => {
    const f = (t as Tool | undefined)?.function;
    if (!t || typeof t !== 'object' || (t as Tool).type !== 'function' || !f || typeof f !== 'object') {
      throw new UsageError(`tool ${i} must be { type: "function", function: { name, description, parameters } }`);
    }
    if (typeof f.name !== 'string' || !NAME.test(f.name)) throw new UsageError(`tool ${i} name ${JSON.stringify(f.name)?.slice(0, 80)} must be 1 to 64 letters, digits, _ . or -`);
    if (seen.has(f.name)) throw new UsageError(`tool name '${f.name}' appears twice: names must be unique`);
    seen.add(f.name);
    if (f.description !== undefined && typeof f.description !== 'string') throw new UsageError(`tool '${f.name}' description must be a string`);
    if (f.parameters !== undefined && (f.parameters === null || typeof f.parameters !== 'object' || Array.isArray(f.parameters))) {
      throw new UsageError(`tool '${f.name}' parameters must be a JSON Schema object`);
    }
  });
  if (choice === undefined || choice === 'auto' || choice === 'none' || choice === 'required') return;
  const c = choice as { type?: unknown; function?: { name?: unknown } };
  if (!c || typeof c !== 'object' || c.type !== 'function' || typeof c.function?.name !== 'string') {
    throw new UsageError('tool choice must be "auto", "none", "required" or { type: "function", function: { name } }');
  }
  if (!seen.has(c.function.name)) throw new UsageError(`tool choice names '${String(c.function.name).slice(0, 64)}', which is not among the tools`);
}

/**
 * The plan for a chat with tools on a template (its Jinja source; undefined = none).
 * `marker(text)`: the GBNF for a marker such as [TOOL_CALLS] (see ToolGrammarOptions.marker).
 * `arch`: the model's architecture (gpt-oss calls tools in harmony whatever its template).
 */
export function planTools(src: string | undefined, req: ToolRequest, marker?: (text: string) => string, arch?: string): ToolPlan {
  checkTools(req.tools, req.choice);
  const choice = req.choice ?? 'auto';
  const format = detectToolFormat(src, arch);
  const idKind = idPattern(format, src);
  const markers = formatMarkers(format);
  // 'none': the template is not shown the tools (the model cannot be tempted); past calls still render.
  if (choice === 'none' || req.tools.length === 0) return { format, render: { system: [] }, idKind, markers: [] };
  const parse = { format, names: new Set(req.tools.map((t) => t.function.name)) };
  const named = typeof choice === 'object' ? req.tools.filter((t) => t.function.name === choice.function.name) : req.tools;
  // Harmony: one call per reply (<|call|> ends generation), as llama.cpp's gpt-oss grammar has it.
  const parallel = req.parallel === true && typeof choice !== 'object' && format !== 'harmony';
  const plan: ToolPlan = { format, render: { tools: req.tools, system: format === 'generic' ? [GENERIC_PROMPT] : [] }, parse, idKind, markers };
  if (format === 'generic') {
    // As llama.cpp: the generic reply is always JSON, a call or {"response": …}.
    plan.grammar = toolGrammar({ format, tools: named, parallel, allowResponse: choice === 'auto', responseSchema: req.responseSchema, marker });
  } else if (req.responseSchema !== undefined) {
    throw new UsageError(`a JSON reply format (response_format, jsonSchema) cannot be combined with tools on this model (${format} tool calls are not JSON replies): drop one, or set tool choice "none"`);
  } else if (choice !== 'auto') {
    plan.grammar = toolGrammar({ format, tools: named, parallel, callId: idKind === 'mistral9', marker });
  }
  return plan;
}

/**
 * The functions whose harmony call messages src/reasoning.ts hands on to the tool
 * parser (ReasoningParser's `calls`) rather than drops: a gpt-oss reply read for
 * tool calls. Undefined for any other.
 */
export const harmonyCallNames = (plan: ToolPlan | undefined): ReadonlySet<string> | undefined => (plan?.parse?.format === 'harmony' ? plan.parse.names : undefined);

/** The reply split into text and calls (ids: the model's, or new ones). */
export function parseReply(plan: ToolPlan, text: string): { content: string; toolCalls: ToolCall[] } {
  if (!plan.parse) return { content: text, toolCalls: [] };
  const r = parseToolOutput(text, { ...plan.parse, partial: false });
  return { content: r.content, toolCalls: r.calls.map((c) => ({ id: c.id ?? newCallId(plan.idKind), name: c.name, arguments: c.arguments })) };
}

/** The assistant message for a reply. */
export function replyMessage(plan: ToolPlan | undefined, text: string): ChatMessage {
  if (!plan) return { role: 'assistant', content: text };
  const r = parseReply(plan, text);
  return { role: 'assistant', content: r.content, ...(r.toolCalls.length ? { toolCalls: r.toolCalls } : {}) };
}

/** How a vocabulary spells a marker: one special token (its id; `silent` if generation prints it as nothing), or undefined for plain text. */
export type MarkerLookup = (text: string) => { id: number; silent: boolean } | undefined;

/** GBNF for markers: a special token by id (a control token matches no text), else the literal. */
export const markerGbnf = (lookup?: MarkerLookup) => (text: string): string => {
  const t = lookup?.(text);
  return t ? `<[${t.id}]>` : lit(text);
};

/** The plan's markers that generation prints as nothing, by token id: the parser needs their text. */
export function silentMarkers(plan: ToolPlan | undefined, lookup?: MarkerLookup): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of plan?.markers ?? []) {
    const t = lookup?.(m);
    if (t?.silent) out.set(t.id, m);
  }
  return out;
}
