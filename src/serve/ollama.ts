// The Ollama dialect (github.com/ollama/ollama docs/api.md) on qllm's port:
//   GET  /api/version, /api/tags, /api/ps
//   POST /api/show, /api/chat, /api/generate   (NDJSON streaming by default, or stream: false)
// The one model answers to any name; replies echo the name asked for. Errors are
// Ollama's {"error": "..."}. Timing fields are qllm's own measurements, in ns.
// Tools as Ollama has them: arguments are objects, calls carry no ids (qllm
// numbers them for the template, matching each tool result to the calls in order),
// and a streamed reply sends its calls in one line before the last.
// A reasoning model's thinking goes to message.thinking (/api/generate: thinking),
// apart from the content, unless the request says think: false; the model still
// thinks then (qllm cannot switch it off), its thinking is just not sent.
import { statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { ChatMessage, GenerateOptions, Token, ToolCall } from '../api.ts';
import { UsageError } from '../errors.ts';
import { compileResponseFormat } from '../grammar/index.ts';
import { formatCount } from '../info.ts';
import { checkTools, detectToolFormat, parseReply, ToolCallStream, type ToolPlan } from '../tools/index.ts';
import { runEmbed, parseInputs } from './embed.ts';
import { apiError, badType, kindOf, type ApiError } from './errors.ts';
import { planToolsFor, runGeneration, servedReasoning, type Finished, type GenRequest, type Reply, type ServeContext } from './generate.ts';
import { QLLM_VERSION, readJson, sendJson, writeLine, type Dialect, type Handler } from './http-util.ts';
import { asObject, optBool, optNumber, parseStop, type Body } from './parse.ts';

const errorBody = (e: ApiError) => ({ error: e.message });

const notSupported = (what: string): Handler => () => { throw apiError(501, what, 'not_supported'); };

/**
 * Ollama's `options`, as far as qllm has them; other known options are accepted and ignored, as Ollama ignores unknown ones.
 * With --context-shift (`shift`) num_predict may exceed the context.
 */
function parseOptions(v: unknown, contextLength: number, defaultMax: number | undefined, shift = false): GenerateOptions {
  if (v === undefined || v === null) return { maxTokens: defaultMax ?? contextLength };
  if (typeof v !== 'object' || Array.isArray(v)) throw badType('options', 'an object', v);
  const o = v as Body;
  const num = (k: string, r: { min: number; max: number; integer?: boolean }) => optNumber(o, k, r, `options.${k}`);
  const numCtx = num('num_ctx', { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
  if (numCtx !== undefined && numCtx > contextLength) {
    throw apiError(400, `options.num_ctx is ${numCtx} but qllm serve loaded the model with a context of ${contextLength}: restart it with -c ${numCtx} (or ask for less)`, 'context_length_exceeded', 'options.num_ctx');
  }
  const predict = num('num_predict', { min: -2, max: Number.MAX_SAFE_INTEGER, integer: true });
  if (predict === 0) throw apiError(400, "'options.num_predict' must be -1 (until the end), -2 (fill the context) or at least 1", 'invalid_value', 'options.num_predict');
  num('presence_penalty', { min: -2, max: 2 }); // accepted, not used by the sampler
  num('frequency_penalty', { min: -2, max: 2 });
  const opts: GenerateOptions = {
    // -1 and -2 both run to EOS or the end of the context; so does a count past it.
    maxTokens: predict === undefined ? defaultMax ?? contextLength : predict > 0 ? (shift ? predict : Math.min(predict, contextLength)) : contextLength,
    temperature: num('temperature', { min: 0, max: 2 }),
    topK: num('top_k', { min: 0, max: 1_000_000, integer: true }),
    topP: num('top_p', { min: 0, max: 1 }),
    minP: num('min_p', { min: 0, max: 1 }),
    repeatPenalty: num('repeat_penalty', { min: Number.MIN_VALUE, max: 10 }),
    repeatLastN: num('repeat_last_n', { min: -1, max: contextLength, integer: true }),
    seed: num('seed', { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, integer: true }),
    stop: parseStop(o.stop, 'options.stop'),
  };
  for (const k of Object.keys(opts) as (keyof GenerateOptions)[]) if (opts[k] === undefined) delete opts[k];
  return opts;
}

/** options.num_keep: what a context shift keeps after the BOS (-1: the whole prompt), as Ollama's runner counts it. */
function parseNumKeep(v: unknown): { nKeep?: number } {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  const n = optNumber(v as Body, 'num_keep', { min: -1, max: Number.MAX_SAFE_INTEGER, integer: true }, 'options.num_keep');
  return n === undefined ? {} : { nKeep: n };
}

/** Ollama's `format`: "json" (any JSON object) or a JSON schema → the grammar the reply must follow. */
function parseFormat(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const rf = v === 'json' ? { type: 'json_object' } : v && typeof v === 'object' && !Array.isArray(v) ? { type: 'json_schema', json_schema: { schema: v } } : undefined;
  if (!rf) throw apiError(400, `'format' must be "json" or a JSON schema object, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : kindOf(v)}`, 'invalid_value', 'format');
  try {
    return compileResponseFormat(rf);
  } catch (e) {
    if (e instanceof UsageError) throw apiError(400, `'format': ${e.message}`, 'invalid_value', 'format');
    throw e;
  }
}

/** Fields qllm cannot honour: a clear 400 rather than a reply that ignores them. */
function refuseUnsupported(b: Body): void {
  if (Array.isArray(b.images) ? b.images.length > 0 : b.images !== undefined && b.images !== null) throw apiError(400, "'images' are not supported: qllm runs text-only models", 'not_supported', 'images');
}

/**
 * `think`: whether the reply sends the thinking (default yes, for a model that
 * thinks). true on a model that does not is a 400, as Ollama answers; levels
 * ("high", …, gpt-oss's reasoning effort) are not supported.
 */
function parseThink(ctx: ServeContext, v: unknown): boolean {
  if (v === undefined || v === null || v === false) return v !== false;
  if (typeof v === 'string') throw apiError(400, `'think' levels such as ${JSON.stringify(v.slice(0, 20))} are not supported: send true or false`, 'not_supported', 'think');
  if (v !== true) throw badType('think', 'a boolean', v);
  if (servedReasoning(ctx) === 'none') throw apiError(400, "'think': this model does not think in a way qllm reads (no <think> block or harmony channels in its chat template): leave it out", 'not_supported', 'think');
  return true;
}

function withFormat(opts: GenerateOptions, format: unknown): GenerateOptions {
  const grammar = parseFormat(format);
  return grammar === undefined ? opts : { ...opts, grammar };
}

/** Ollama's calls carry no ids; templates (Mistral's) want them: the n-th call of the conversation is 00000000n. */
const callId = (n: number) => String(n).padStart(9, '0');

function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badType('messages', 'an array of {role, content}', v);
  let calls = 0;
  const pending: ToolCall[] = [];
  return v.map((m, i) => {
    const f = `messages[${i}]`;
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw badType(f, 'an object {role, content}', m);
    const { role, content, images, tool_calls, tool_name, thinking } = m as Body;
    if (typeof role !== 'string') throw badType(`${f}.role`, 'a string', role);
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') {
      throw apiError(400, `'${f}.role' is ${JSON.stringify(role.slice(0, 40))}; qllm supports system, user, assistant and tool`, 'invalid_value', `${f}.role`);
    }
    if (content !== undefined && content !== null && typeof content !== 'string') throw badType(`${f}.content`, 'a string', content);
    if (Array.isArray(images) && images.length > 0) throw apiError(400, `'${f}.images' are not supported: qllm runs text-only models`, 'not_supported', `${f}.images`);
    const msg: ChatMessage = { role, content: typeof content === 'string' ? content : '' };
    if (thinking !== undefined && thinking !== null && typeof thinking !== 'string') throw badType(`${f}.thinking`, 'a string', thinking);
    if (role === 'assistant' && typeof thinking === 'string' && thinking !== '') msg.reasoning = thinking;
    if (role === 'assistant' && tool_calls !== undefined && tool_calls !== null) {
      if (!Array.isArray(tool_calls)) throw badType(`${f}.tool_calls`, 'an array of {function: {name, arguments}}', tool_calls);
      pending.length = 0;
      msg.toolCalls = tool_calls.map((c, j) => {
        const fn = (c as Body | null)?.function as Body | undefined;
        const g = `${f}.tool_calls[${j}].function`;
        if (!fn || typeof fn.name !== 'string' || fn.name === '') throw badType(`${g}.name`, 'a non-empty string', fn?.name);
        const args = fn.arguments ?? {};
        if (typeof args !== 'object' || Array.isArray(args)) throw badType(`${g}.arguments`, 'an object', args);
        const call = { id: callId(++calls), name: fn.name, arguments: JSON.stringify(args) };
        pending.push(call);
        return call;
      });
      if (msg.toolCalls.length === 0) delete msg.toolCalls;
    }
    if (role === 'tool') {
      // Results answer the last assistant turn's calls in order (or by name).
      const k = typeof tool_name === 'string' ? pending.findIndex((c) => c.name === tool_name) : 0;
      const call = pending.splice(Math.max(k, 0), 1)[0];
      if (call) msg.toolCallId = call.id;
      const name = typeof tool_name === 'string' ? tool_name : call?.name;
      if (name !== undefined) msg.name = name;
    }
    return msg;
  });
}

/** Ollama's `tools` (any tool_choice is 'auto'): the plan for the served template, or undefined. */
function parseTools(ctx: ServeContext, v: unknown): { request: { tools: never[] }; plan: ToolPlan } | undefined {
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return undefined;
  try {
    checkTools(v, undefined);
  } catch (e) {
    if (e instanceof UsageError) throw apiError(400, `'tools': ${e.message}`, 'invalid_value', 'tools');
    throw e;
  }
  const request = { tools: v as never[] };
  return { request, plan: planToolsFor(ctx, request) };
}

/** Calls as Ollama sends them: arguments as an object (a call whose arguments do not parse is left as text). */
function ollamaCalls(calls: { name: string; arguments: string }[]): { function: { name: string; arguments: unknown } }[] | undefined {
  const out = [];
  for (const c of calls) {
    try {
      const args = JSON.parse(c.arguments);
      if (!args || typeof args !== 'object' || Array.isArray(args)) return undefined;
      out.push({ function: { name: c.name, arguments: args } });
    } catch {
      return undefined;
    }
  }
  return out.length ? out : undefined;
}

const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));

function durations(f: Finished) {
  const s = f.stats;
  const evalMs = s.generatedTokens > 1 && s.decodeTokPerS > 0 ? ((s.generatedTokens - 1) / s.decodeTokPerS) * 1000 : 0;
  return {
    total_duration: ns(f.totalMs),
    load_duration: 0, // the model was loaded when the server started
    prompt_eval_count: s.promptTokens,
    prompt_eval_duration: ns(s.ttftMs),
    eval_count: s.generatedTokens,
    eval_duration: ns(evalMs),
  };
}

export function ollamaDialect(ctx: ServeContext): Dialect {
  const td = new TextDecoder();
  const tokenText = (id: number) => td.decode(ctx.meta.piece(id));
  const logprob = (t: Token) => ({
    token: tokenText(t.tokenId), logprob: Number.isFinite(t.logprob) ? t.logprob : -9999, bytes: [...ctx.meta.piece(t.tokenId)],
    top_logprobs: (t.topLogprobs ?? []).map((a) => ({ token: tokenText(a.tokenId), logprob: Number.isFinite(a.logprob) ? a.logprob : -9999, bytes: [...ctx.meta.piece(a.tokenId)] })),
  });
  const info = ctx.model.info;
  const name = ctx.meta.names[0];
  let modified = new Date(ctx.started * 1000).toISOString();
  try {
    if (ctx.meta.path) modified = statSync(ctx.meta.path).mtime.toISOString();
  } catch { /* a path that is gone: the start time will do */ }
  const details = {
    parent_model: '', format: 'gguf', family: info.architecture, families: [info.architecture],
    parameter_size: formatCount(info.f16WeightBytes / 2), quantization_level: ctx.meta.quantization ?? '',
  };
  const entry = () => ({ name, model: name, modified_at: modified, size: info.fileBytes, digest: '', details });

  /** Requests name a model; any name selects the one served. */
  const modelName = (b: Body): string => {
    const m = b.model ?? b.name;
    if (m === undefined || m === null || m === '') throw apiError(400, "'model' is required: any name selects the model qllm serves", 'missing_field', 'model');
    if (typeof m !== 'string') throw badType('model', 'a string', m);
    return m;
  };

  const run = async (res: ServerResponse, state: Parameters<Handler>[2], b: Body, model: string, req: GenRequest, kind: 'chat' | 'generate', think: boolean) => {
    const stream = optBool(b, 'stream') ?? true;
    const logprobs = optBool(b, 'logprobs');
    const top = optNumber(b, 'top_logprobs', { min: 0, max: 20, integer: true });
    if (top !== undefined && !logprobs) throw apiError(400, "'top_logprobs' needs 'logprobs': true", 'invalid_value', 'top_logprobs');
    if (logprobs) req.opts.logprobs = top ?? 0;
    const head = () => ({ model, created_at: new Date().toISOString() });
    const thought = (r: string | undefined) => (think && r ? { thinking: r } : {});
    const part = (text: string, calls?: object[], reasoning?: string) => (kind === 'chat'
      ? { message: { role: 'assistant', content: text, ...thought(reasoning), ...(calls ? { tool_calls: calls } : {}) } }
      : { response: text, ...thought(reasoning) });
    const lp = (tokens: Token[]) => (logprobs ? { logprobs: tokens.filter((t) => t.logprob !== undefined).map(logprob) } : {});
    const plan = req.tools?.plan.parse ? req.tools.plan : undefined;
    // With tools the text goes through the call parser; the calls go out whole at the end.
    const calls = plan?.parse && stream ? new ToolCallStream(plan.parse, plan.idKind) : undefined;
    const reply: Reply = {
      stream,
      errorBody,
      begin: async () => {
        res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
        res.flushHeaders();
      },
      token: async (t) => {
        const text = calls ? calls.push(t.text).map((d) => ('content' in d ? d.content : '')).join('') : t.text;
        const r = think ? t.reasoning : undefined;
        if (text !== '' || r || (logprobs && t.logprob !== undefined)) await writeLine(res, { ...head(), ...part(text, undefined, r), ...lp([t]), done: false });
      },
      end: async (f) => {
        let text = stream ? '' : f.text;
        let toolCalls: object[] | undefined;
        if (calls) {
          const last = calls.finish();
          const rest = last.deltas.map((d) => ('content' in d ? d.content : '')).join('');
          toolCalls = ollamaCalls(last.calls);
          if (rest !== '' || toolCalls) await writeLine(res, { ...head(), ...part(rest, toolCalls), done: false });
        } else if (plan && !stream) {
          const r = parseReply(plan, f.text);
          toolCalls = ollamaCalls(r.toolCalls);
          if (toolCalls) text = r.content;
        }
        const done = { ...head(), ...part(text, stream ? undefined : toolCalls, stream ? undefined : f.reasoning), ...(stream ? {} : lp(f.tokens)), done: true, done_reason: f.stats.stopReason === 'length' ? 'length' : 'stop', ...durations(f) };
        if (stream) await writeLine(res, done);
        else sendJson(res, 200, done);
      },
      fail: (e) => writeLine(res, { error: e.message }),
    };
    await runGeneration(ctx, req, reply, res, state);
  };

  /** Ollama answers a request with nothing to generate by loading the model: done at once. */
  const loaded = (res: ServerResponse, model: string, kind: 'chat' | 'generate') => sendJson(res, 200, {
    model, created_at: new Date().toISOString(), ...(kind === 'chat' ? { message: { role: 'assistant', content: '' } } : { response: '' }), done: true, done_reason: 'load',
  });

  const body = async (req: Parameters<Handler>[0]) => asObject(await readJson(req, ctx.maxBody));
  return {
    errorBody,
    owns: (path) => path === '/api' || path.startsWith('/api/'),
    routes: {
      '/api/version': { GET: (_q, res) => sendJson(res, 200, { version: QLLM_VERSION }) },
      '/api/tags': { GET: (_q, res) => sendJson(res, 200, { models: [entry()] }) },
      '/api/ps': { GET: (_q, res) => sendJson(res, 200, {
        models: [{ ...entry(), expires_at: '9999-12-31T23:59:59Z', size_vram: ctx.model.memory().total, context_length: ctx.contextLength }],
      }) },
      '/api/show': { POST: async (req, res) => {
        const b = await body(req);
        modelName(b);
        // Ollama lists 'tools' for a template that calls them in a syntax of its own (not the generic fallback).
        const toolsShown = !!ctx.meta.template && !ctx.meta.template.usedDefault && detectToolFormat(ctx.meta.template.source) !== 'generic';
        const arch = info.architecture;
        sendJson(res, 200, {
          license: '', modelfile: `# served by qllm ${QLLM_VERSION}\nFROM ${ctx.meta.path ?? name}\n`, parameters: '',
          template: ctx.meta.template?.source ?? '', details, modified_at: modified, capabilities: ['completion', ...(toolsShown ? ['tools'] : []), ...(servedReasoning(ctx) !== 'none' ? ['thinking'] : [])],
          model_info: {
            'general.architecture': arch, 'general.name': info.name, 'general.parameter_count': Math.round(info.f16WeightBytes / 2),
            [`${arch}.context_length`]: ctx.contextLength, 'tokenizer.ggml.vocab_size': info.vocabSize,
          },
        });
      } },
      '/api/chat': { POST: async (req, res, state) => {
        const b = await body(req);
        const model = modelName(b);
        refuseUnsupported(b);
        const think = parseThink(ctx, b.think);
        const messages = parseMessages(b.messages);
        const opts = withFormat(parseOptions(b.options, ctx.contextLength, ctx.defaultMaxTokens, ctx.contextShift), b.format);
        const tools = parseTools(ctx, b.tools);
        if (tools && opts.grammar !== undefined) throw apiError(400, "'format' cannot be combined with 'tools': the reply would have to be JSON and a call at once", 'invalid_value', 'format');
        if (messages.length === 0) return loaded(res, model, 'chat');
        await run(res, state, b, model, { messages, opts, ...parseNumKeep(b.options), ...(tools ? { tools } : {}) }, 'chat', think);
      } },
      '/api/generate': { POST: async (req, res, state) => {
        const b = await body(req);
        const model = modelName(b);
        refuseUnsupported(b);
        const think = parseThink(ctx, b.think);
        for (const k of ['prompt', 'system', 'suffix', 'template'] as const) {
          if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'string') throw badType(k, 'a string', b[k]);
        }
        if (b.suffix) throw apiError(400, "'suffix' (fill-in-the-middle) is not supported by qllm yet", 'not_supported', 'suffix');
        if (b.template) throw apiError(400, "'template' (a Go template) is not supported: qllm renders the model's own Jinja chat template, or none with raw: true", 'not_supported', 'template');
        if (Array.isArray(b.context) ? b.context.length > 0 : b.context !== undefined && b.context !== null) {
          throw apiError(400, "'context' is not supported: send the conversation to /api/chat instead", 'not_supported', 'context');
        }
        const raw = optBool(b, 'raw') ?? false;
        const prompt = (b.prompt as string | undefined) ?? '';
        const system = (b.system as string | undefined) ?? '';
        const opts = withFormat(parseOptions(b.options, ctx.contextLength, ctx.defaultMaxTokens, ctx.contextShift), b.format);
        const keep = parseNumKeep(b.options);
        if (prompt === '' && system === '') return loaded(res, model, 'generate');
        // As Ollama does with a GGUF that has no chat template: the prompt goes in as it is.
        const plain = raw || ctx.meta.template?.usedDefault === true;
        const greq: GenRequest = plain
          ? { prompt: system ? `${system}\n\n${prompt}` : prompt, opts, ...keep }
          : { messages: [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content: prompt }], opts, ...keep };
        await run(res, state, b, model, greq, 'generate', think);
      } },
      // Ollama's embeddings: /api/embed (`input`: text or texts → `embeddings`), and the older /api/embeddings (`prompt` → `embedding`).
      '/api/embed': { POST: async (req, res) => {
        const b = asObject(await readJson(req, ctx.maxBody));
        const { data, ms } = await runEmbed(ctx, parseInputs(b.input, 'input'), res);
        const ns = Math.round(ms * 1e6);
        sendJson(res, 200, { model: name, embeddings: data.map((e) => e.embedding), total_duration: ns, load_duration: 0, prompt_eval_count: data.reduce((n, e) => n + e.tokens, 0) });
      } },
      '/api/embeddings': { POST: async (req, res) => {
        const b = asObject(await readJson(req, ctx.maxBody));
        if (typeof b.prompt !== 'string') throw badType('prompt', 'a string', b.prompt);
        const { data } = await runEmbed(ctx, [b.prompt], res);
        sendJson(res, 200, { embedding: data[0].embedding });
      } },
      '/api/pull': { POST: notSupported('qllm serve serves the one model it was started with: download others with `qllm pull` and start another server') },
      '/api/create': { POST: notSupported('qllm serve cannot create models: it serves the one GGUF file it was started with') },
      '/api/copy': { POST: notSupported('qllm serve cannot copy models: it serves the one GGUF file it was started with') },
      '/api/delete': { DELETE: notSupported('qllm serve cannot delete models: it serves the one GGUF file it was started with') },
      '/api/push': { POST: notSupported('qllm serve cannot push models') },
    },
  };
}
