// llama-server's own completion route (tools/server: POST /completion, also
// /completions), in its shapes rather than OpenAI's:
//   request   {prompt, n_predict, stream, temperature, top_k, top_p, min_p, seed,
//              repeat_penalty, repeat_last_n, stop, n_keep, grammar, json_schema, return_tokens}
//   response  {index, content, tokens, stop: true, model, tokens_predicted, tokens_evaluated,
//              generation_settings, prompt, has_new_line, truncated, stop_type, stopping_word, timings}
//   streamed  SSE: {index, content, tokens, stop: false, tokens_predicted} per token, then the
//              response with content '' and stop: true (no [DONE], as llama-server's /completion)
// `truncated` is llama-server's: the context ran out (without --context-shift),
// was shifted, or the prompt was cut to fit. Fields qllm cannot honour (n_probs,
// n_discard, ...) are a 400 naming them; unknown ones are ignored, as llama-server does.
import type { ServerResponse } from 'node:http';
import type { GenerateOptions, GenerationStats } from '../api.ts';
import { SAMPLER_DEFAULTS } from '../sampler.ts';
import { apiError, badType } from './errors.ts';
import { runGeneration, type Finished, type Reply, type ServeContext } from './generate.ts';
import { readJson, sendJson, writeEvent, type Handler } from './http-util.ts';
import { asObject, type Body, optBool, optNumber, parseStop } from './parse.ts';

interface Parsed { prompt: string; stream: boolean; opts: GenerateOptions; nKeep?: number; returnTokens: boolean }

/** Nonzero values of fields whose meaning qllm does not implement: refused, not ignored. */
const UNSUPPORTED: [field: string, why: string][] = [
  ['n_probs', 'send it to /v1/completions as logprobs'],
  ['n_discard', 'a context shift drops half of what it does not keep'],
  ['mirostat', 'qllm samples with penalties, top-k, top-p, min-p and temperature'],
  ['n_indent', 'not supported'],
];

function parse(body: unknown, ctx: ServeContext): Parsed {
  const b = asObject(body);
  let p = b.prompt;
  if (p === undefined) throw apiError(400, "missing required field 'prompt': send a string", 'missing_field', 'prompt');
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') p = p[0];
  if (typeof p !== 'string') throw badType('prompt', 'a string (token arrays and several prompts are not supported)', p);
  for (const [f, why] of UNSUPPORTED) {
    const v = b[f];
    if (v !== undefined && v !== null && v !== 0) throw apiError(400, `'${f}' is not supported by qllm: ${why}`, 'not_supported', f);
  }
  if (b.ignore_eos === true) throw apiError(400, "'ignore_eos' is not supported by qllm: generation ends at the end-of-generation token", 'not_supported', 'ignore_eos');
  // n_predict, or its aliases; -1 (llama-server's default) is --max-tokens or the context, as a request without one elsewhere.
  const field = ['n_predict', 'max_tokens', 'max_completion_tokens'].find((k) => b[k] !== undefined && b[k] !== null) ?? 'n_predict';
  const predict = optNumber(b, field, { min: -1, max: Number.MAX_SAFE_INTEGER, integer: true });
  if (predict === 0) throw apiError(400, `'${field}' 0 (evaluate the prompt only) is not supported: ask for at least 1 token`, 'invalid_value', field);
  if (predict !== undefined && predict > ctx.contextLength && !ctx.contextShift) {
    throw apiError(400, `'${field}' is ${predict} but the context holds ${ctx.contextLength} tokens: ask for fewer (or restart with a larger -c, or with --context-shift)`, 'context_length_exceeded', field);
  }
  const seed = optNumber(b, 'seed', { min: -1, max: Number.MAX_SAFE_INTEGER, integer: true });
  const opts: GenerateOptions = {
    maxTokens: predict !== undefined && predict > 0 ? predict : ctx.defaultMaxTokens ?? ctx.contextLength,
    temperature: optNumber(b, 'temperature', { min: 0, max: 2 }),
    topK: optNumber(b, 'top_k', { min: 0, max: 1_000_000, integer: true }),
    topP: optNumber(b, 'top_p', { min: 0, max: 1 }),
    minP: optNumber(b, 'min_p', { min: 0, max: 1 }),
    // -1 and 4294967295 are llama-server's "random".
    seed: seed === undefined || seed === -1 || seed === 0xffffffff ? undefined : seed,
    repeatPenalty: optNumber(b, 'repeat_penalty', { min: 0, max: 10 }),
    repeatLastN: optNumber(b, 'repeat_last_n', { min: -1, max: ctx.contextLength, integer: true }),
    stop: parseStop(b.stop),
  };
  if (b.grammar !== undefined && b.grammar !== null && b.grammar !== '') {
    if (typeof b.grammar !== 'string') throw badType('grammar', 'a GBNF grammar (a string)', b.grammar);
    opts.grammar = b.grammar;
  }
  if (b.json_schema !== undefined && b.json_schema !== null) {
    if (typeof b.json_schema !== 'object' || Array.isArray(b.json_schema)) throw badType('json_schema', 'a JSON schema object', b.json_schema);
    if (opts.grammar !== undefined) throw apiError(400, "'grammar' and 'json_schema' cannot be combined: send one", 'invalid_value', 'json_schema');
    opts.jsonSchema = b.json_schema as object;
  }
  for (const k of Object.keys(opts) as (keyof GenerateOptions)[]) if (opts[k] === undefined) delete opts[k];
  optBool(b, 'cache_prompt'); // accepted: a slot's cache is always reused
  const nKeep = optNumber(b, 'n_keep', { min: -1, max: Number.MAX_SAFE_INTEGER, integer: true });
  return { prompt: p, stream: optBool(b, 'stream') ?? false, opts, ...(nKeep !== undefined ? { nKeep } : {}), returnTokens: optBool(b, 'return_tokens') ?? false };
}

const STOP_TYPE: Record<GenerationStats['stopReason'], string> = { eos: 'eos', stop: 'word', length: 'limit', abort: 'none' };

/** llama-server's slot timings (server_slot_stats::to_json), from qllm's measurements. */
function timings(s: GenerationStats) {
  const cached = s.cachedTokens ?? 0;
  const promptN = s.promptTokens - cached;
  const predictedMs = s.generatedTokens > 1 && s.decodeTokPerS > 0 ? ((s.generatedTokens - 1) / s.decodeTokPerS) * 1000 : 0;
  const per = (ms: number, n: number) => (n > 0 ? ms / n : 0);
  return {
    cache_n: cached,
    prompt_n: promptN, prompt_ms: s.ttftMs, prompt_per_token_ms: per(s.ttftMs, promptN), prompt_per_second: s.prefillTokPerS,
    predicted_n: s.generatedTokens, predicted_ms: predictedMs, predicted_per_token_ms: per(predictedMs, s.generatedTokens - 1), predicted_per_second: s.decodeTokPerS,
  };
}

/**
 * llama-server's `truncated`: a shift or a cut prompt, or (without --context-shift)
 * a reply that stopped because the context was full.
 */
export function truncatedOf(s: GenerationStats, contextLength: number): boolean {
  return (s.contextShifts ?? 0) > 0 || (s.droppedPromptTokens ?? 0) > 0 || (s.stopReason === 'length' && s.promptTokens + s.generatedTokens >= contextLength);
}

export function llamaCompletion(ctx: ServeContext): Handler {
  return async (req, res: ServerResponse, state) => {
    const p = parse(await readJson(req, ctx.maxBody), ctx);
    const model = ctx.meta.names[0];
    let predicted = 0;
    const settings = {
      n_predict: p.opts.maxTokens, n_keep: p.nKeep ?? 0, seed: p.opts.seed ?? 4294967295,
      temperature: p.opts.temperature ?? SAMPLER_DEFAULTS.temperature, top_k: p.opts.topK ?? SAMPLER_DEFAULTS.topK, top_p: p.opts.topP ?? SAMPLER_DEFAULTS.topP,
      min_p: p.opts.minP ?? SAMPLER_DEFAULTS.minP, repeat_penalty: p.opts.repeatPenalty ?? SAMPLER_DEFAULTS.repeatPenalty, repeat_last_n: p.opts.repeatLastN ?? SAMPLER_DEFAULTS.repeatLastN,
      stop: p.opts.stop ?? [], stream: p.stream,
    };
    const final = (f: Finished, content: string, tokens: number[]): Body => ({
      index: 0, content, tokens, stop: true, model,
      tokens_predicted: f.stats.generatedTokens, tokens_evaluated: f.stats.promptTokens,
      generation_settings: settings, prompt: p.prompt, has_new_line: f.text.includes('\n'),
      truncated: truncatedOf(f.stats, ctx.contextLength), stop_type: STOP_TYPE[f.stats.stopReason],
      // qllm's stats do not say which stop string matched.
      stopping_word: '',
      timings: timings(f.stats),
    });
    const ids = (f: Finished) => (p.returnTokens ? f.tokens.filter((t) => t.tokenId >= 0).map((t) => t.tokenId) : []);
    const reply: Reply = {
      stream: p.stream,
      begin: async () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
        res.flushHeaders();
      },
      token: async (t) => {
        if (t.tokenId >= 0) predicted++;
        await writeEvent(res, { index: 0, content: t.text, tokens: p.returnTokens && t.tokenId >= 0 ? [t.tokenId] : [], stop: false, tokens_predicted: predicted });
      },
      end: async (f) => {
        // Streamed, the text and tokens went out with the tokens, as llama-server's final event.
        if (p.stream) await writeEvent(res, final(f, '', []));
        else sendJson(res, 200, final(f, f.text, ids(f)));
      },
      fail: (e) => writeEvent(res, { error: { code: e.status, message: e.message, type: e.type } }),
    };
    await runGeneration(ctx, { prompt: p.prompt, opts: p.opts, ...(p.nKeep !== undefined ? { nKeep: p.nKeep } : {}) }, reply, res, state);
  };
}
