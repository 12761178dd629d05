// OpenAI request bodies → qllm options, and qllm results → OpenAI response
// objects. Every bad field is a 400 that names the field; the shapes follow the
// `openai` package's ChatCompletion / ChatCompletionChunk / Completion types.
import type { ChatMessage, GenerateOptions, GenerationStats, GpuBytes } from '../api.ts';
import { apiError } from './errors.ts';

export interface ParsedRequest {
  messages?: ChatMessage[];
  prompt?: string;
  stream: boolean;
  includeUsage: boolean;
  opts: GenerateOptions;
}

export interface RequestLimits { contextLength: number; modelId: string; defaultMaxTokens?: number }

type Body = Record<string, unknown>;

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function badType(field: string, want: string, v: unknown) {
  return apiError(400, `'${field}' must be ${want}, got ${kindOf(v)} ${JSON.stringify(v)?.slice(0, 40) ?? ''}`.trimEnd(), 'invalid_type', field);
}

function optNumber(body: Body, field: string, r: { min: number; max: number; integer?: boolean }): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  const want = `${r.integer ? 'an integer' : 'a number'} in ${r.min}..${r.max}`;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badType(field, want, v);
  if ((r.integer && !Number.isInteger(v)) || v < r.min || v > r.max) throw apiError(400, `'${field}' must be ${want}, got ${v}`, 'invalid_value', field);
  return v;
}

function optBool(body: Body, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badType(field, 'a boolean', v);
  return v;
}

function parseStop(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw badType('stop', 'a string or an array of strings', v);
  if (v.length > 16) throw apiError(400, `'stop' has ${v.length} strings; at most 16 are allowed`, 'invalid_value', 'stop');
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
      throw apiError(400, `'${field}[${j}]' is a ${JSON.stringify(p?.type ?? kindOf(p))} part; only {type: "text", text} parts are supported`, 'invalid_value', `${field}[${j}]`);
    }
    return p.text;
  }).join('');
}

function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined) throw apiError(400, "missing required field 'messages': send an array of {role, content}", 'missing_field', 'messages');
  if (!Array.isArray(v)) throw badType('messages', 'an array of {role, content}', v);
  if (v.length === 0) throw apiError(400, "'messages' is empty: send at least one message", 'invalid_value', 'messages');
  return v.map((m, i) => {
    const f = `messages[${i}]`;
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw badType(f, 'an object {role, content}', m);
    const { role, content } = m as Body;
    if (typeof role !== 'string') throw badType(`${f}.role`, 'a string', role);
    // `developer` is OpenAI's newer name for `system`.
    const r = role === 'developer' ? 'system' : role;
    if (r !== 'system' && r !== 'user' && r !== 'assistant') {
      throw apiError(400, `'${f}.role' is ${JSON.stringify(role)}; qllm supports system, developer, user and assistant`, 'invalid_value', `${f}.role`);
    }
    if (content === undefined && r !== 'assistant') throw apiError(400, `missing required field '${f}.content'`, 'missing_field', `${f}.content`);
    return { role: r, content: parseContent(content, `${f}.content`) };
  });
}

function parseCommon(body: unknown, lim: RequestLimits): { b: Body; parsed: Omit<ParsedRequest, 'messages' | 'prompt'> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw apiError(400, `request body must be a JSON object, got ${kindOf(body)}`, 'invalid_body');
  const b = body as Body;
  if (b.model !== undefined && b.model !== null) {
    if (typeof b.model !== 'string') throw badType('model', 'a string', b.model);
    if (b.model !== lim.modelId) throw apiError(404, `The model '${b.model}' does not exist: this server serves '${lim.modelId}' (or omit 'model')`, 'model_not_found', 'model');
  }
  const n = optNumber(b, 'n', { min: 1, max: 1, integer: true });
  void n; // only n = 1 is allowed; the check above rejects anything else
  const maxA = optNumber(b, 'max_tokens', { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
  const maxB = optNumber(b, 'max_completion_tokens', { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
  const maxTokens = maxB ?? maxA;
  if (maxTokens !== undefined && maxTokens > lim.contextLength) {
    const f = maxB !== undefined ? 'max_completion_tokens' : 'max_tokens';
    throw apiError(400, `'${f}' is ${maxTokens} but the context holds ${lim.contextLength} tokens: ask for fewer (or restart with a larger -c)`, 'context_length_exceeded', f);
  }
  const stream = optBool(b, 'stream') ?? false;
  let includeUsage = false;
  if (b.stream_options !== undefined && b.stream_options !== null) {
    if (typeof b.stream_options !== 'object' || Array.isArray(b.stream_options)) throw badType('stream_options', 'an object', b.stream_options);
    const iu = (b.stream_options as Body).include_usage;
    if (iu !== undefined && typeof iu !== 'boolean') throw badType('stream_options.include_usage', 'a boolean', iu);
    includeUsage = iu === true;
  }
  // Accepted for compatibility, not used by the sampler.
  optNumber(b, 'presence_penalty', { min: -2, max: 2 });
  optNumber(b, 'frequency_penalty', { min: -2, max: 2 });
  const opts: GenerateOptions = {
    maxTokens: maxTokens ?? lim.defaultMaxTokens ?? lim.contextLength,
    temperature: optNumber(b, 'temperature', { min: 0, max: 2 }),
    topP: optNumber(b, 'top_p', { min: 0, max: 1 }),
    topK: optNumber(b, 'top_k', { min: 0, max: 1_000_000, integer: true }),
    minP: optNumber(b, 'min_p', { min: 0, max: 1 }),
    seed: optNumber(b, 'seed', { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, integer: true }),
    // llama.cpp server's names for the repetition penalty.
    repeatPenalty: optNumber(b, 'repeat_penalty', { min: 0, max: 10 }),
    repeatLastN: optNumber(b, 'repeat_last_n', { min: 0, max: lim.contextLength, integer: true }),
    stop: parseStop(b.stop),
  };
  for (const k of Object.keys(opts) as (keyof GenerateOptions)[]) if (opts[k] === undefined) delete opts[k];
  return { b, parsed: { stream, includeUsage, opts } };
}

export function parseChatRequest(body: unknown, lim: RequestLimits): ParsedRequest {
  const { b, parsed } = parseCommon(body, lim);
  return { ...parsed, messages: parseMessages(b.messages) };
}

export function parseCompletionRequest(body: unknown, lim: RequestLimits): ParsedRequest {
  const { b, parsed } = parseCommon(body, lim);
  let p = b.prompt;
  if (p === undefined) throw apiError(400, "missing required field 'prompt': send a string", 'missing_field', 'prompt');
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') p = p[0];
  if (typeof p !== 'string') throw badType('prompt', 'a string (batches and token arrays are not supported)', p);
  return { ...parsed, prompt: p };
}

// ---- responses -------------------------------------------------------------

export type FinishReason = 'stop' | 'length';
export const finishReason = (s: GenerationStats['stopReason']): FinishReason => (s === 'length' ? 'length' : 'stop');

export interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens: number }
export const usageOf = (s: GenerationStats): Usage => ({ prompt_tokens: s.promptTokens, completion_tokens: s.generatedTokens, total_tokens: s.promptTokens + s.generatedTokens });

/** qllm's own figures, sent beside `usage`. */
export interface Timings { ttft_ms: number; prefill_tok_per_s: number; decode_tok_per_s: number; total_ms: number; gpu_memory: GpuBytes }
export const timingsOf = (s: GenerationStats, totalMs: number, mem: GpuBytes): Timings => ({
  ttft_ms: round(s.ttftMs), prefill_tok_per_s: round(s.prefillTokPerS), decode_tok_per_s: round(s.decodeTokPerS), total_ms: round(totalMs), gpu_memory: mem,
});
const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : 0);

export interface Meta { id: string; created: number; model: string }

export function chatChunk(m: Meta, delta: { role?: 'assistant'; content?: string }, finish: FinishReason | null, withUsage: boolean) {
  return {
    id: m.id, object: 'chat.completion.chunk' as const, created: m.created, model: m.model, system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

export function completionChunk(m: Meta, text: string, finish: FinishReason | null, withUsage: boolean) {
  return {
    id: m.id, object: 'text_completion' as const, created: m.created, model: m.model, system_fingerprint: null,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

/** The last streamed chunk when stream_options.include_usage is set: no choices, the usage. */
export function usageChunk(m: Meta, object: 'chat.completion.chunk' | 'text_completion', usage: Usage, timings: Timings) {
  return { id: m.id, object, created: m.created, model: m.model, system_fingerprint: null, choices: [], usage, timings };
}

export function chatCompletion(m: Meta, content: string, finish: FinishReason, usage: Usage, timings: Timings) {
  return {
    id: m.id, object: 'chat.completion' as const, created: m.created, model: m.model, system_fingerprint: null,
    choices: [{ index: 0, message: { role: 'assistant' as const, content, refusal: null }, logprobs: null, finish_reason: finish }],
    usage, timings,
  };
}

export function textCompletion(m: Meta, text: string, finish: FinishReason, usage: Usage, timings: Timings) {
  return {
    id: m.id, object: 'text_completion' as const, created: m.created, model: m.model, system_fingerprint: null,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    usage, timings,
  };
}
