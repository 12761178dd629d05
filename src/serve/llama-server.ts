// The llama-server dialect (llama.cpp's tools/server): its non-OpenAI utility
// routes, with its request and response shapes.
//   POST /completion      its own completion shape (llama-completion.ts; /completions too)
//   POST /tokenize        {content, add_special?, parse_special?, with_pieces?} → {tokens}
//   POST /detokenize      {tokens} → {content}
//   POST /apply-template  {messages, tools?} → {prompt}: exactly the text a chat request feeds the model
//   GET  /props           context, model path, chat template, BOS/EOS text, default settings
//   GET  /metrics         Prometheus text with llama-server's metric names
import type { ServerResponse } from 'node:http';
import { SAMPLER_DEFAULTS } from '../sampler.ts';
import { apiError, badType } from './errors.ts';
import { planToolsFor, renderPrompt, type ServeContext } from './generate.ts';
import { QLLM_VERSION, readJson, sendJson, type Dialect } from './http-util.ts';
import { llamaCompletion } from './llama-completion.ts';
import { asObject, optBool, parseMessages, parseTools } from './parse.ts';

const strict = new TextDecoder('utf-8', { fatal: true });

/** llama-server's piece: a string when the bytes are valid UTF-8, else the byte values. */
function pieceJson(bytes: Uint8Array): string | number[] {
  try {
    return strict.decode(bytes);
  } catch {
    return [...bytes];
  }
}

/** Prometheus text exposition: HELP, TYPE and one sample per metric. */
function prometheus(items: [name: string, type: 'counter' | 'gauge', help: string, value: number][]): string {
  return items.map(([name, type, help, value]) => {
    const v = Number.isFinite(value) ? value : 0;
    return `# HELP llamacpp:${name} ${help}\n# TYPE llamacpp:${name} ${type}\nllamacpp:${name} ${v}\n`;
  }).join('');
}

export function llamaServerDialect(ctx: ServeContext, o: { metrics: boolean }): Dialect {
  const body = async (req: Parameters<typeof readJson>[0]) => asObject(await readJson(req, ctx.maxBody));
  const vocab = ctx.model.info.vocabSize;

  const metrics = (_req: unknown, res: ServerResponse) => {
    if (!o.metrics) throw apiError(501, 'this server does not export metrics: start it without --no-metrics', 'not_supported');
    const m = ctx.metrics;
    const text = prometheus([
      ['prompt_tokens_total', 'counter', 'Number of prompt tokens processed, excluding cached tokens', m.promptTokens],
      ['prompt_tokens_cached_total', 'counter', 'Number of prompt tokens reused from the cache', m.cachedTokens],
      ['prompt_seconds_total', 'counter', 'Total time spent processing prompts', m.promptSeconds],
      ['tokens_predicted_total', 'counter', 'Number of generation tokens processed', m.predictedTokens],
      ['tokens_predicted_seconds_total', 'counter', 'Total time spent generating tokens', m.predictSeconds],
      ['n_decode_total', 'counter', 'Total number of forward passes', m.decodes],
      ['n_tokens_max', 'counter', 'Largest observed sequence length (prompt + generation)', m.maxSequence],
      ['prompt_tokens_seconds', 'gauge', 'Average prompt throughput in tokens/s', m.promptSeconds > 0 ? m.promptTokens / m.promptSeconds : 0],
      ['predicted_tokens_seconds', 'gauge', 'Average generation throughput in tokens/s', m.predictSeconds > 0 ? m.predictedTokens / m.predictSeconds : 0],
      ['requests_processing', 'gauge', 'Number of requests processing', ctx.queue.busy],
      ['requests_deferred', 'gauge', 'Number of requests deferred', ctx.queue.waiting],
    ]);
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Process-Start-Time-Unix': String(ctx.started) });
    res.end(text);
  };

  const props = (_req: unknown, res: ServerResponse) => {
    const t = ctx.meta.template;
    sendJson(res, 200, {
      default_generation_settings: {
        n_ctx: ctx.contextLength,
        params: {
          n_predict: ctx.defaultMaxTokens ?? -1,
          seed: 4294967295, // random per request
          temperature: SAMPLER_DEFAULTS.temperature,
          top_k: SAMPLER_DEFAULTS.topK,
          top_p: SAMPLER_DEFAULTS.topP,
          min_p: SAMPLER_DEFAULTS.minP,
          repeat_last_n: SAMPLER_DEFAULTS.repeatLastN,
          repeat_penalty: SAMPLER_DEFAULTS.repeatPenalty,
          stop: [],
          n_probs: 0,
          samplers: ['penalties', 'top_k', 'top_p', 'min_p', 'temperature'],
        },
      },
      total_slots: ctx.slots.length,
      model_alias: ctx.meta.names[0],
      model_path: ctx.meta.path ?? '',
      modalities: { vision: false, audio: false },
      chat_template: t?.source ?? '',
      bos_token: t?.bosText ?? '',
      eos_token: t?.eosText ?? '',
      build_info: `qllm ${QLLM_VERSION}`,
      is_sleeping: false,
    });
  };

  const completion = llamaCompletion(ctx);
  return {
    routes: {
      '/completion': { POST: completion },
      '/completions': { POST: completion },
      '/tokenize': { POST: async (req, res) => {
        const b = await body(req);
        if (b.content === undefined) throw apiError(400, "missing required field 'content': send the text to tokenize", 'missing_field', 'content');
        if (typeof b.content !== 'string') throw badType('content', 'a string', b.content);
        const ids = ctx.meta.tokenize(b.content, { addSpecial: optBool(b, 'add_special') ?? false, parseSpecial: optBool(b, 'parse_special') ?? true });
        const tokens = optBool(b, 'with_pieces') ? ids.map((id) => ({ id, piece: pieceJson(ctx.meta.piece(id)) })) : ids;
        sendJson(res, 200, { tokens });
      } },
      '/detokenize': { POST: async (req, res) => {
        const b = await body(req);
        const t = b.tokens ?? [];
        if (!Array.isArray(t)) throw badType('tokens', 'an array of token ids', t);
        t.forEach((id, i) => {
          if (!Number.isInteger(id) || id < 0 || id >= vocab) throw apiError(400, `'tokens[${i}]' must be a token id in 0..${vocab - 1}`, 'invalid_value', `tokens[${i}]`);
        });
        sendJson(res, 200, { content: ctx.meta.detokenize(t as number[]) });
      } },
      '/apply-template': { POST: async (req, res) => {
        const b = await body(req);
        // With tools, as a chat request renders them (the template's own, or the generic system prompt).
        const tools = parseTools(b);
        const plan = tools ? planToolsFor(ctx, tools) : undefined;
        sendJson(res, 200, { prompt: renderPrompt(ctx, parseMessages(b.messages), plan?.render).text });
      } },
      '/props': { GET: props },
      '/metrics': { GET: metrics },
    },
  };
}
