// The OpenAI dialect: /v1/models, /v1/chat/completions, /v1/completions.
// Request bodies → the generation core's options, and its results → OpenAI
// response objects. Every bad field is a 400 that names the field; the shapes
// follow the `openai` package's ChatCompletion / ChatCompletionChunk / Completion types.
// Tools: the model's calls come back as message.tool_calls (finish_reason
// 'tool_calls'); streamed, each call is one delta with index, id, type and name,
// then its arguments in fragments. response_format constrains the reply's JSON.
// A reasoning model's thinking comes as message.reasoning_content (streamed:
// delta.reasoning_content), apart from the content, as llama-server sends it;
// --reasoning-format or the request's reasoning_format 'none' leaves it inline.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ChatMessage, GenerateOptions, GenerationStats, GpuBytes, Token } from '../api.ts';
import { REASONING_FORMATS, type ReasoningFormat } from '../reasoning.ts';
import { parseReply, type StreamDelta, ToolCallStream, type ToolPlan, type ToolRequest } from '../tools/index.ts';
import { base64Floats, parseInputs, runEmbed } from './embed.ts';
import { apiError, badType, preview } from './errors.ts';
import { asObject, optBool, optNumber, parseMessages, parseResponseFormat, parseStop, parseTools, type Body } from './parse.ts';
import { planToolsFor, runGeneration, type Finished, type Reply, type ServeContext } from './generate.ts';
import { readJson, sendJson, writeEvent, type Dialect, type Handler } from './http-util.ts';

export interface ParsedRequest {
  messages?: ChatMessage[];
  prompt?: string;
  stream: boolean;
  includeUsage: boolean;
  opts: GenerateOptions;
  tools?: ToolRequest;
  /** response_format's grammar and schema (json_object / json_schema). */
  responseFormat?: { grammar: string; schema: unknown };
  /** llama-server's per-request reasoning_format. */
  reasoningFormat?: ReasoningFormat;
  /** llama-server's n_keep (GenRequest.nKeep). */
  nKeep?: number;
}

/** `contextShift`: the server's --context-shift, under which max_tokens may exceed the context. */
export interface RequestLimits { contextLength: number; defaultMaxTokens?: number; contextShift?: boolean }

function parseCommon(body: unknown, lim: RequestLimits): { b: Body; parsed: Omit<ParsedRequest, 'messages' | 'prompt'> } {
  const b = asObject(body);
  // One model is served; any name selects it (clients insist on sending one).
  if (b.model !== undefined && b.model !== null && typeof b.model !== 'string') throw badType('model', 'a string', b.model);
  const n = optNumber(b, 'n', { min: 1, max: 1, integer: true });
  void n; // only n = 1 is allowed; the check above rejects anything else
  const maxA = optNumber(b, 'max_tokens', { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
  const maxB = optNumber(b, 'max_completion_tokens', { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
  const maxTokens = maxB ?? maxA;
  if (maxTokens !== undefined && maxTokens > lim.contextLength && !lim.contextShift) {
    const f = maxB !== undefined ? 'max_completion_tokens' : 'max_tokens';
    throw apiError(400, `'${f}' is ${maxTokens} but the context holds ${lim.contextLength} tokens: ask for fewer (or restart with a larger -c, or with --context-shift)`, 'context_length_exceeded', f);
  }
  // llama-server's field, as it takes it here too: what a context shift keeps (-1: the whole prompt).
  const nKeep = optNumber(b, 'n_keep', { min: -1, max: Number.MAX_SAFE_INTEGER, integer: true });
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
  const responseFormat = parseResponseFormat(b.response_format);
  return { b, parsed: { stream, includeUsage, opts, ...(responseFormat ? { responseFormat } : {}), ...(nKeep !== undefined ? { nKeep } : {}) } };
}

export function parseChatRequest(body: unknown, lim: RequestLimits): ParsedRequest {
  const { b, parsed } = parseCommon(body, lim);
  const logprobs = optBool(b, 'logprobs');
  const top = optNumber(b, 'top_logprobs', { min: 0, max: 20, integer: true });
  if (top !== undefined && !logprobs) throw apiError(400, "'top_logprobs' needs 'logprobs': true", 'invalid_value', 'top_logprobs');
  if (logprobs) parsed.opts.logprobs = top ?? 0;
  const tools = parseTools(b);
  // A reply beside tools: the schema goes to the tool plan (only the generic format can honour it).
  if (tools && parsed.responseFormat) tools.responseSchema = parsed.responseFormat.schema;
  const rf = b.reasoning_format ?? undefined;
  if (rf !== undefined && !REASONING_FORMATS.includes(rf as ReasoningFormat)) throw badType('reasoning_format', `one of ${REASONING_FORMATS.map((f) => `"${f}"`).join(', ')}`, rf);
  return { ...parsed, messages: parseMessages(b.messages), ...(tools ? { tools } : {}), ...(rf !== undefined ? { reasoningFormat: rf as ReasoningFormat } : {}) };
}

export function parseCompletionRequest(body: unknown, lim: RequestLimits): ParsedRequest {
  const { b, parsed } = parseCommon(body, lim);
  let p = b.prompt;
  if (p === undefined) throw apiError(400, "missing required field 'prompt': send a string", 'missing_field', 'prompt');
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') p = p[0];
  if (typeof p !== 'string') throw badType('prompt', 'a string (batches and token arrays are not supported)', p);
  // Legacy shape: `logprobs` is the number of alternatives (0..20 here; OpenAI allows 5).
  const logprobs = optNumber(b, 'logprobs', { min: 0, max: 20, integer: true });
  if (logprobs !== undefined) parsed.opts.logprobs = logprobs;
  if (optBool(b, 'echo')) throw apiError(400, "'echo' is not supported: the reply holds only the completion", 'invalid_value', 'echo');
  return { ...parsed, prompt: p };
}

// ---- responses -------------------------------------------------------------

export type FinishReason = 'stop' | 'length' | 'tool_calls';
/** A reply cut off by the token limit says 'length' even when it holds a call (as OpenAI does). */
export const finishReason = (s: GenerationStats['stopReason'], calls = 0): FinishReason => (s === 'length' ? 'length' : calls > 0 ? 'tool_calls' : 'stop');

/** prompt_tokens_details.cached_tokens: prompt tokens whose K/V a slot's cache already held (the prompt cache, slots.ts), as OpenAI reports its own. */
export interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: { cached_tokens: number } }
export const usageOf = (s: GenerationStats): Usage => ({
  prompt_tokens: s.promptTokens, completion_tokens: s.generatedTokens, total_tokens: s.promptTokens + s.generatedTokens, prompt_tokens_details: { cached_tokens: s.cachedTokens ?? 0 },
});

/**
 * qllm's own figures, sent beside `usage`; context_shifts and prompt_tokens_dropped
 * say whether --context-shift shifted the context or cut the prompt (llama-server's `truncated`).
 */
export interface Timings { ttft_ms: number; prefill_tok_per_s: number; decode_tok_per_s: number; total_ms: number; prompt_tokens_cached: number; context_shifts: number; prompt_tokens_dropped: number; gpu_memory: GpuBytes }
export const timingsOf = (s: GenerationStats, totalMs: number, mem: GpuBytes): Timings => ({
  prompt_tokens_cached: s.cachedTokens ?? 0,
  context_shifts: s.contextShifts ?? 0,
  prompt_tokens_dropped: s.droppedPromptTokens ?? 0,
  ttft_ms: round(s.ttftMs), prefill_tok_per_s: round(s.prefillTokPerS), decode_tok_per_s: round(s.decodeTokPerS), total_ms: round(totalMs), gpu_memory: mem,
});
const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : 0);

interface Meta { id: string; created: number; model: string }

// Logprobs. A token's `token` is its piece as text (an incomplete UTF-8 piece shows
// U+FFFD); `bytes` are the exact bytes. -Infinity has no JSON form: OpenAI's -9999 floor.
type Piece = (id: number) => { text: string; bytes: number[] };
const lp = (x: number) => (Number.isFinite(x) ? x : -9999);
const td = new TextDecoder();
const pieces = (ctx: ServeContext): Piece => {
  const cache = new Map<number, { text: string; bytes: number[] }>();
  return (id) => {
    let p = cache.get(id);
    if (!p) {
      const b = ctx.meta.piece(id);
      p = { text: td.decode(b), bytes: [...b] };
      cache.set(id, p);
    }
    return p;
  };
};

function chatLogprob(t: Token, piece: Piece) {
  const p = piece(t.tokenId);
  return {
    token: p.text, logprob: lp(t.logprob as number), bytes: p.bytes,
    top_logprobs: (t.topLogprobs ?? []).map((a) => { const q = piece(a.tokenId); return { token: q.text, logprob: lp(a.logprob), bytes: q.bytes }; }),
  };
}

/** The legacy completions shape; text_offset counts characters from the start of the prompt. */
function legacyLogprobs(tokens: Token[], piece: Piece, offset: { at: number }) {
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] };
  for (const t of tokens) {
    if (t.logprob === undefined) continue;
    const p = piece(t.tokenId);
    out.tokens.push(p.text);
    out.token_logprobs.push(lp(t.logprob));
    out.top_logprobs.push(Object.fromEntries((t.topLogprobs ?? []).map((a) => [piece(a.tokenId).text, lp(a.logprob)])));
    out.text_offset.push(offset.at);
    offset.at += [...p.text].length;
  }
  return out;
}

const base = (m: Meta, object: string) => ({ id: m.id, object, created: m.created, model: m.model, system_fingerprint: null });

/** A tool-call stream delta as a chat.completion.chunk delta. */
const deltaOf = (d: StreamDelta) => ('content' in d ? { content: d.content }
  : 'name' in d ? { tool_calls: [{ index: d.index, id: d.id, type: 'function', function: { name: d.name, arguments: '' } }] }
  : { tool_calls: [{ index: d.index, function: { arguments: d.arguments } }] });

function chatReply(ctx: ServeContext, p: ParsedRequest, res: ServerResponse, plan: ToolPlan | undefined): Reply {
  const m: Meta = { id: `chatcmpl-${randomId()}`, created: Math.floor(Date.now() / 1000), model: ctx.meta.names[0] };
  const piece = pieces(ctx);
  const withLp = p.opts.logprobs !== undefined;
  const usage = p.includeUsage ? { usage: null } : {};
  const chunk = (delta: object, logprobs: object | null, finish: FinishReason | null) => ({
    ...base(m, 'chat.completion.chunk'), choices: [{ index: 0, delta, logprobs, finish_reason: finish }], ...usage,
  });
  // With tools, the text goes through the call parser (it holds back what may become a call).
  const calls = plan?.parse && p.stream ? new ToolCallStream(plan.parse, plan.idKind) : undefined;
  return {
    stream: p.stream,
    begin: async () => {
      sseHead(res);
      await writeEvent(res, chunk({ role: 'assistant', content: '' }, null, null));
    },
    token: async (t) => {
      let entry = withLp && t.logprob !== undefined ? { content: [chatLogprob(t, piece)], refusal: null } : null;
      if (t.reasoning) {
        await writeEvent(res, chunk({ reasoning_content: t.reasoning }, entry, null));
        entry = null;
      }
      if (calls) {
        const deltas = calls.push(t.text);
        for (const [k, d] of deltas.entries()) await writeEvent(res, chunk(deltaOf(d), k === 0 ? entry : null, null));
        if (deltas.length === 0 && entry) await writeEvent(res, chunk({ content: '' }, entry, null));
        return;
      }
      // A token can be part of a UTF-8 character and carry no text yet.
      if (t.text !== '' || entry) await writeEvent(res, chunk({ content: t.text }, entry, null));
    },
    end: async (f: Finished) => {
      const timings = timingsOf(f.stats, f.totalMs, ctx.model.memory());
      if (!p.stream) {
        const logprobs = withLp ? { content: f.tokens.filter((t) => t.logprob !== undefined).map((t) => chatLogprob(t, piece)), refusal: null } : null;
        const r = plan ? parseReply(plan, f.text) : { content: f.text, toolCalls: [] };
        const toolCalls = r.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
        const reasoning = f.reasoning ? { reasoning_content: f.reasoning } : {};
        const message = toolCalls.length ? { role: 'assistant', content: r.content === '' ? null : r.content, ...reasoning, refusal: null, tool_calls: toolCalls } : { role: 'assistant', content: r.content, ...reasoning, refusal: null };
        sendJson(res, 200, {
          ...base(m, 'chat.completion'),
          choices: [{ index: 0, message, logprobs, finish_reason: finishReason(f.stats.stopReason, toolCalls.length) }],
          usage: usageOf(f.stats), timings,
        });
        return;
      }
      let n = 0;
      if (calls) {
        const last = calls.finish();
        for (const d of last.deltas) await writeEvent(res, chunk(deltaOf(d), null, null));
        n = last.calls.length;
      }
      await writeEvent(res, chunk({}, null, finishReason(f.stats.stopReason, n)));
      if (p.includeUsage) await writeEvent(res, { ...base(m, 'chat.completion.chunk'), choices: [], usage: usageOf(f.stats), timings });
      await writeEvent(res, '[DONE]');
    },
    fail: (e) => writeEvent(res, { error: { message: e.message, type: e.type, param: e.param, code: e.code } }),
  };
}

function completionReply(ctx: ServeContext, p: ParsedRequest, res: ServerResponse): Reply {
  const m: Meta = { id: `cmpl-${randomId()}`, created: Math.floor(Date.now() / 1000), model: ctx.meta.names[0] };
  const piece = pieces(ctx);
  const withLp = p.opts.logprobs !== undefined;
  const offset = { at: [...(p.prompt ?? '')].length };
  const usage = p.includeUsage ? { usage: null } : {};
  const chunk = (text: string, logprobs: object | null, finish: FinishReason | null) => ({
    ...base(m, 'text_completion'), choices: [{ index: 0, text, logprobs, finish_reason: finish }], ...usage,
  });
  return {
    stream: p.stream,
    begin: async () => sseHead(res),
    token: async (t) => {
      const entry = withLp && t.logprob !== undefined ? legacyLogprobs([t], piece, offset) : null;
      if (t.text !== '' || entry) await writeEvent(res, chunk(t.text, entry, null));
    },
    end: async (f: Finished) => {
      const timings = timingsOf(f.stats, f.totalMs, ctx.model.memory());
      const fin = finishReason(f.stats.stopReason);
      if (!p.stream) {
        const logprobs = withLp ? legacyLogprobs(f.tokens, piece, offset) : null;
        sendJson(res, 200, { ...base(m, 'text_completion'), choices: [{ index: 0, text: f.text, logprobs, finish_reason: fin }], usage: usageOf(f.stats), timings });
        return;
      }
      await writeEvent(res, chunk('', null, fin));
      if (p.includeUsage) await writeEvent(res, { ...base(m, 'text_completion'), choices: [], usage: usageOf(f.stats), timings });
      await writeEvent(res, '[DONE]');
    },
    fail: (e) => writeEvent(res, { error: { message: e.message, type: e.type, param: e.param, code: e.code } }),
  };
}

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
}

const randomId = () => randomBytes(12).toString('hex');

// ---- routes ----------------------------------------------------------------

export function openaiDialect(ctx: ServeContext): Dialect {
  const lim: RequestLimits = { contextLength: ctx.contextLength, defaultMaxTokens: ctx.defaultMaxTokens, contextShift: ctx.contextShift };
  const completion = (kind: 'chat' | 'completion'): Handler => async (req, res, state) => {
    const body = await readJson(req, ctx.maxBody);
    const p = kind === 'chat' ? parseChatRequest(body, lim) : parseCompletionRequest(body, lim);
    const plan = p.tools ? planToolsFor(ctx, p.tools) : undefined;
    // The tool plan takes the response format when it parses calls (generic format); otherwise it constrains the reply.
    if (p.responseFormat && !plan?.parse) p.opts.grammar = p.responseFormat.grammar;
    const reply = kind === 'chat' ? chatReply(ctx, p, res, plan?.parse ? plan : undefined) : completionReply(ctx, p, res);
    const tools = p.tools && plan ? { tools: { request: p.tools, plan } } : {};
    const rf = p.reasoningFormat ? { reasoningFormat: p.reasoningFormat } : {};
    await runGeneration(ctx, { messages: p.messages, prompt: p.prompt, opts: p.opts, nKeep: p.nKeep, ...tools, ...rf }, reply, res, state);
  };
  // OpenAI's embeddings: `input` text(s) → unit vectors, as floats or base64 float32.
  const embeddings: Handler = async (req, res) => {
    const b = asObject(await readJson(req, ctx.maxBody));
    const texts = parseInputs(b.input, 'input');
    const format = b.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') throw badType('encoding_format', '"float" or "base64"', format);
    if (b.dimensions !== undefined && !(Number.isInteger(b.dimensions) && (b.dimensions as number) > 0)) throw badType('dimensions', 'a positive integer', b.dimensions);
    const { data } = await runEmbed(ctx, texts, res);
    // A model's vectors have one size: `dimensions` may only name it (no truncation).
    if (b.dimensions !== undefined && b.dimensions !== data[0].embedding.length) {
      throw apiError(400, `'dimensions' ${preview(b.dimensions)} is not supported: this model's embeddings have ${data[0].embedding.length} dimensions; leave it out`, 'invalid_value', 'dimensions');
    }
    const tokens = data.reduce((n, e) => n + e.tokens, 0);
    sendJson(res, 200, {
      object: 'list',
      data: data.map((e, index) => ({ object: 'embedding', index, embedding: format === 'base64' ? base64Floats(e.embedding) : e.embedding })),
      model: ctx.meta.names[0],
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  };
  const model = (id: string) => ({ id, object: 'model', created: ctx.started, owned_by: 'qllm' });
  return {
    routes: {
      '/v1/models': { GET: (_q, res) => sendJson(res, 200, { object: 'list', data: ctx.meta.names.map(model) }) },
      '/v1/chat/completions': { POST: completion('chat') },
      '/v1/completions': { POST: completion('completion') },
      '/v1/embeddings': { POST: embeddings },
    },
    match: (path) => {
      if (!path.startsWith('/v1/models/')) return undefined;
      return { GET: (_q, res) => {
        let id: string;
        try {
          id = decodeURIComponent(path.slice('/v1/models/'.length));
        } catch {
          throw apiError(400, `'${preview(path.slice(11))}' is not a valid percent-encoded model id`, 'invalid_value');
        }
        // Any name selects the one model, as in the requests.
        sendJson(res, 200, model(id));
      } };
    },
  };
}
