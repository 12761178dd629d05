// The generation core every dialect (openai.ts, ollama.ts) translates to:
// prepare the prompt (the chat template rendered once, cheap size bounds before
// any encoding), wait for the model in the FIFO, run the generation, and hand
// the tokens to the dialect's Reply, which writes its own wire format. A client
// that disconnects aborts its generation at once. No dialect knows another.
import type { ServerResponse } from 'node:http';
import type { ChatMessage, GenerateOptions, Generation, GenerationStats, Model, Token } from '../api.ts';
import { UsageError } from '../errors.ts';
import { systemPrefix } from '../generate.ts';
import { mergeDeltas, ReasoningParser, type ReasoningFormat, type ReasoningSyntax, reasoningSyntax, thinkingOpen } from '../reasoning.ts';
import { harmonyCallNames, type MarkerLookup, markerGbnf, planTools, silentMarkers, type ToolPlan, type ToolRequest } from '../tools/index.ts';
import { apiError, type ApiError } from './errors.ts';
import { sendError, toApiError } from './http-util.ts';
import type { ModelMeta } from './model-meta.ts';
import type { FifoQueue } from './queue.ts';
import { pickFor, type Slot } from './slots.ts';

export interface RunState {
  /** Tokens generated, for the request log. */
  tokens: number;
  clientClosed: boolean;
}

/** What the server shares with every dialect. */
export interface ServeContext {
  model: Model;
  meta: ModelMeta;
  /** Context the model was loaded with. */
  contextLength: number;
  /** max tokens when a request gives none; default: until EOS or the end of the context. */
  defaultMaxTokens: number | undefined;
  queue: FifoQueue;
  /** The conversations that generate at once (slots.ts); queue hands them out. */
  slots: Slot[];
  metrics: Metrics;
  /** Body size limit for readJson. */
  maxBody: number;
  /** Server start, unix seconds. */
  started: number;
  log: (line: string) => void;
  draining: () => boolean;
  /** Called with the running generation's controller and a promise that settles when it ends (for drain). */
  track: (ac: AbortController, done: Promise<void>) => void;
  onStats: (s: GenerationStats, totalMs: number) => void;
  /** --reasoning-format: what a chat reply does with a reasoning model's thinking; default 'auto' (split off). */
  reasoningFormat?: ReasoningFormat;
  /**
   * --context-shift: generations keep going past the context (GenerateOptions.contextShift),
   * max_tokens may exceed it, and a prompt longer than it is cut instead of refused.
   */
  contextShift: boolean;
}

export interface GenRequest {
  /** A chat (rendered through the model's template) or a raw prompt. */
  messages?: ChatMessage[];
  prompt?: string;
  opts: GenerateOptions;
  /** A chat with tools: the request and its plan (planToolsFor). */
  tools?: { request: ToolRequest; plan: ToolPlan };
  /** The request's own reasoning format (llama-server's per-request field); default the server's. */
  reasoningFormat?: ReasoningFormat;
  /**
   * Tokens a context shift keeps, as llama-server's n_keep and Ollama's num_keep
   * count them: after the BOS; -1 the whole prompt. Default: a chat's leading
   * system messages, else the BOS.
   */
  nKeep?: number;
}

export interface Finished {
  /** The reply; a chat's answer alone when its thinking was split off. */
  text: string;
  /** A chat's thinking, split off the reply ('' when none, or none asked for). */
  reasoning: string;
  /** Every token as generated (with logprobs when asked for). */
  tokens: Token[];
  stats: GenerationStats;
  /** From the model's turn starting to the last token. */
  totalMs: number;
}

/** A dialect's wire format for one generation. */
export interface Reply {
  stream: boolean;
  /** The dialect's error body, for failures before any byte of the reply; default OpenAI's. */
  errorBody?: (e: ApiError) => unknown;
  /** Streaming: the headers and any opening event, once the first token is ready. */
  begin(): Promise<void>;
  /** Streaming: one token (a chat's thinking in t.reasoning, split off t.text; a last one may come with tokenId -1). */
  token(t: Token): Promise<void>;
  /** The end: the whole reply, or the streamed closing events. The core ends the response after. */
  end(f: Finished): Promise<void>;
  /** Streaming: a failure after the headers went out. */
  fail(e: ApiError): Promise<void>;
}

/** Figures for /metrics (llama-server's names), summed over every generation. */
export class Metrics {
  promptTokens = 0;
  cachedTokens = 0;
  promptSeconds = 0;
  predictedTokens = 0;
  predictSeconds = 0;
  /** Forward passes: one per generated token (the first one also runs the prompt). */
  decodes = 0;
  /** Longest prompt + generation seen. */
  maxSequence = 0;
  generations = 0;
  /** Context shifts (--context-shift), and prompts cut to fit the context. */
  contextShifts = 0;
  truncatedPrompts = 0;

  record(s: GenerationStats): void {
    const cached = s.cachedTokens ?? 0;
    this.generations++;
    this.promptTokens += s.promptTokens - cached;
    this.cachedTokens += cached;
    this.promptSeconds += s.ttftMs / 1000;
    this.predictedTokens += s.generatedTokens;
    if (s.generatedTokens > 1 && s.decodeTokPerS > 0) this.predictSeconds += (s.generatedTokens - 1) / s.decodeTokPerS;
    this.decodes += s.generatedTokens;
    this.maxSequence = Math.max(this.maxSequence, s.promptTokens + s.generatedTokens);
    this.contextShifts += s.contextShifts ?? 0;
    if (s.droppedPromptTokens) this.truncatedPrompts++;
  }
}

/** Bytes past which a prompt cannot fit the context whatever its tokens (Infinity: no bound known). */
export const maxPromptBytes = (ctx: ServeContext) => ctx.meta.maxTokenBytes * ctx.contextLength;

function checkFits(ctx: ServeContext, text: string): void {
  // With context shift a prompt of any length is cut to fit (the body limit bounds it).
  if (ctx.contextShift) return;
  const bound = maxPromptBytes(ctx);
  // Cheap: a string's UTF-16 length is at most its UTF-8 byte count.
  if (text.length <= bound / 3) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > bound) {
    throw apiError(400, `the prompt is ${bytes} bytes; the context of ${ctx.contextLength} tokens holds at most ${bound} bytes of this vocabulary (${ctx.meta.maxTokenBytes} per token): shorten it`, 'context_length_exceeded');
  }
}

/** The prompt text a chat request feeds the model (what /apply-template returns), checked against the context. */
export function renderPrompt(ctx: ServeContext, messages: ChatMessage[], tools?: ToolPlan['render']): { text: string; addBos: boolean } {
  const t = ctx.meta.template;
  if (!t) throw apiError(501, 'this model exposes no chat template to the server', 'not_supported');
  const bound = ctx.contextShift ? Number.POSITIVE_INFINITY : maxPromptBytes(ctx);
  const r = t.render(messages, Number.isFinite(bound) ? bound : undefined, tools);
  checkFits(ctx, r.text);
  return r;
}

/** A marker that is one special token of the served vocabulary (its plain text tokenizes otherwise). */
const markerLookup = (ctx: ServeContext): MarkerLookup => (text) => {
  const ids = ctx.meta.tokenize(text, { addSpecial: false, parseSpecial: true });
  if (ids.length !== 1 || ctx.meta.tokenize(text, { addSpecial: false, parseSpecial: false }).length === 1) return undefined;
  // Counted as silent either way: only a token that prints as nothing gets its text put back.
  return { id: ids[0], silent: true };
};

/** The tool plan for the served model's template: 400 naming the field when the tools or choice cannot be used. */
export function planToolsFor(ctx: ServeContext, request: ToolRequest, field = 'tools'): ToolPlan {
  try {
    return planTools(ctx.meta.template?.source, request, markerGbnf(markerLookup(ctx)), ctx.model.info.architecture);
  } catch (e) {
    if (e instanceof UsageError) throw apiError(400, e.message, 'invalid_value', /^a JSON reply format/.test(e.message) ? 'response_format' : /^tool choice/.test(e.message) ? 'tool_choice' : field);
    throw e;
  }
}

interface Prepared {
  start: (slot: Slot, o: GenerateOptions) => Generation;
  /** The prompt's token ids, for the prompt cache's slot choice (absent: not known before the model renders it). */
  ids?: () => number[];
  /** Control tokens whose text the reply needs (tool-call markers), by id. */
  silent?: Map<number, string>;
  /** A reasoning model's chat: how to split its thinking off (src/reasoning.ts); `calls`: the functions whose harmony calls go on to the tool parser. */
  reasoning?: { syntax: ReasoningSyntax; open: boolean; calls?: ReadonlySet<string> };
}

/** The syntax of the served model's thinking ('none' for a model that does not think in a way qllm reads). */
export function servedReasoning(ctx: ServeContext): ReasoningSyntax {
  const t = ctx.meta.template;
  return reasoningSyntax(ctx.model.info.architecture, t && !t.usedDefault ? t.source : undefined);
}

/** The BOS tokens (0 or 1) the vocabulary puts before a prompt: llama-server and Ollama count n_keep after them. */
function bosCount(ctx: ServeContext): number {
  try {
    return Math.min(1, ctx.model.tokenize('').length);
  } catch {
    return 0;
  }
}

/**
 * The context-shift options of a request: contextShift as the server was
 * started (also for chat(), whose default is on), and the tokens a shift keeps:
 * n_keep after the BOS (-1: the whole prompt), else the leading system messages
 * of a chat the server renders (`system`: their length in the prompt's
 * tokens), else the library's default (the BOS; chat(): its system prompt).
 */
function shiftOptions(ctx: ServeContext, req: GenRequest, system?: () => number | undefined): GenerateOptions {
  if (!ctx.contextShift) return { contextShift: false };
  const n = req.nKeep;
  const keep = n === undefined ? system?.() : n < 0 ? -1 : n + bosCount(ctx);
  return keep === undefined ? { contextShift: true } : { contextShift: true, keepTokens: keep };
}

/** Renders or checks the prompt now (errors before queueing), returns how to start the generation. */
function prepare(ctx: ServeContext, req: GenRequest): Prepared {
  if (req.messages) {
    const messages = req.messages;
    const plan = req.tools?.plan;
    if (!ctx.meta.template) {
      // A model the server cannot render for: its own chat() handles the tools.
      const t = req.tools?.request;
      const tools = t ? { tools: t.tools, toolChoice: t.choice, parallelToolCalls: t.parallel } : {};
      // It splits the thinking off too (Token.reasoning).
      const reasoningFormat = (req.reasoningFormat ?? ctx.reasoningFormat) === 'none' ? 'none' as const : 'auto' as const;
      // Its chat() keeps the system prompt at a shift by itself.
      return { start: (slot, o) => slot.chat(messages, { ...o, ...tools, reasoningFormat, ...shiftOptions(ctx, req) }) };
    }
    if (plan?.grammar !== undefined && (req.opts.grammar !== undefined || req.opts.jsonSchema !== undefined)) {
      throw apiError(400, "'response_format' cannot be combined with a forced tool call: drop one", 'invalid_value', 'response_format');
    }
    // Rendered once here, fed as text: the bytes were checked, and /apply-template shows exactly this.
    const r = renderPrompt(ctx, messages, plan?.render);
    const grammar = plan?.grammar !== undefined ? { grammar: plan.grammar } : {};
    const syntax = servedReasoning(ctx);
    let ids: number[] | undefined;
    const promptIds = () => (ids ??= ctx.model.tokenize(r.text, { addBos: r.addBos }));
    // The system messages alone, rendered and tokenized as the prompt is (model-api.ts chatOn does the same).
    const head = (sys: ChatMessage[]) => ctx.model.tokenize(ctx.meta.template!.render(sys, undefined, plan?.render, false).text, { addBos: r.addBos });
    const system = () => systemPrefix(messages, promptIds(), head);
    return {
      start: (slot, o) => slot.generate(r.text, { ...o, ...grammar, addBos: r.addBos, ...shiftOptions(ctx, req, system) }), ids: promptIds, silent: silentMarkers(plan, markerLookup(ctx)),
      ...(syntax !== 'none' ? { reasoning: { syntax, open: thinkingOpen(syntax, r.text), calls: harmonyCallNames(plan) } } : {}),
    };
  }
  const prompt = req.prompt ?? '';
  checkFits(ctx, prompt);
  return { start: (slot, o) => slot.generate(prompt, { ...o, ...shiftOptions(ctx, req) }), ids: () => ctx.model.tokenize(prompt, { addBos: req.opts.addBos }) };
}

function report(ctx: ServeContext, e: unknown): ApiError {
  const err = toApiError(e);
  if (err.code === 'internal_error') ctx.log(`internal error during generation: ${(e as Error)?.stack ?? e}`);
  return err;
}

export const shuttingDown = () => apiError(503, 'server is shutting down; retry against another instance', 'shutting_down');

export async function runGeneration(ctx: ServeContext, req: GenRequest, reply: Reply, res: ServerResponse, state: RunState): Promise<void> {
  const prepared = prepare(ctx, req);
  const { start, ids } = prepared;
  if (ctx.draining()) throw shuttingDown();
  const ac = new AbortController();
  const onClose = () => { if (!res.writableFinished) { state.clientClosed = true; ac.abort(); } };
  res.on('close', onClose);
  let release: (() => void) | undefined;
  let slot: Slot | undefined;
  let finished!: () => void;
  const done = new Promise<void>((r) => { finished = r; });
  try {
    const granted = await ctx.queue.acquire(ac.signal, pickFor(ctx.slots, ids));
    release = granted;
    slot = ctx.slots[granted.slot];
    ctx.track(ac, done);
    const format = req.reasoningFormat ?? ctx.reasoningFormat ?? 'auto';
    const split = format !== 'none' && prepared.reasoning ? { ...prepared.reasoning, legacy: format === 'deepseek-legacy' } : undefined;
    await generateInto(ctx, start(slot, Object.assign({}, req.opts, { signal: ac.signal })), reply, res, state, prepared.silent, split);
  } catch (e) {
    if (!state.clientClosed) sendError(res, ac.signal.aborted ? shuttingDown() : report(ctx, e), reply.errorBody);
  } finally {
    if (!res.writableEnded && !state.clientClosed) {
      if (res.headersSent) res.end();
      else sendError(res, shuttingDown(), reply.errorBody);
    }
    res.off('close', onClose);
    if (slot) slot.lastUsed = performance.now();
    release?.();
    finished();
  }
}

/**
 * `split`: a reasoning model's chat, whose thinking goes to Token.reasoning and
 * Finished.reasoning; `legacy` (deepseek-legacy) leaves the reply whole and
 * reports the thinking beside it only when not streaming, as llama-server does.
 */
async function generateInto(ctx: ServeContext, gen: Generation, reply: Reply, res: ServerResponse, state: RunState, silent?: Map<number, string>, split?: { syntax: ReasoningSyntax; open: boolean; calls?: ReadonlySet<string>; legacy: boolean }): Promise<void> {
  const t0 = performance.now();
  gen.stats.then((s) => ctx.metrics.record(s), () => {});
  gen.promptIds.catch(() => {});
  const it = gen[Symbol.asyncIterator]();
  const tokens: Token[] = [];
  let text = '';
  let thinking = '';
  let parser = split && new ReasoningParser(split.syntax, { open: split.open, calls: split.calls });
  const legacy = split?.legacy === true;
  const take = (t: Token): Token => {
    // A tool-call marker that is a control token prints as nothing: the reply's parser needs its text.
    const marked = silent?.size && t.text === '' ? silent.get(t.tokenId) : undefined;
    let tok = marked ? { ...t, text: marked } : t;
    state.tokens++;
    tokens.push(tok);
    if (parser) {
      const d = mergeDeltas(parser.push(tok.text));
      thinking += d.reasoning;
      if (!legacy) tok = { ...tok, text: d.content, ...(d.reasoning ? { reasoning: d.reasoning } : {}) };
    } else if (tok.reasoning) thinking += tok.reasoning; // a model without a template the server reads: its chat() split it
    text += tok.text;
    return tok;
  };
  /** What the splitter still holds at the end, as a last token (undefined: nothing). */
  const rest = (): Token | undefined => {
    if (!parser) return undefined;
    const d = mergeDeltas(parser.finish());
    parser = undefined;
    thinking += d.reasoning;
    if (legacy || (!d.content && !d.reasoning)) return undefined;
    text += d.content;
    return { text: d.content, tokenId: -1, ...(d.reasoning ? { reasoning: d.reasoning } : {}) };
  };
  const finish = async (): Promise<Finished> => {
    const stats = await gen.stats;
    const totalMs = performance.now() - t0;
    ctx.onStats(stats, totalMs);
    rest();
    return { text, reasoning: legacy && reply.stream ? '' : thinking, tokens, stats, totalMs };
  };
  try {
    // Wait for the first token before answering, so that a prompt the model
    // refuses (too long, …) still gets a proper error status.
    let step = await it.next();
    if (!reply.stream) {
      while (!step.done) { take(step.value); step = await it.next(); }
      await reply.end(await finish());
      return;
    }
    await reply.begin();
    try {
      while (!step.done) {
        await reply.token(take(step.value));
        if (state.clientClosed) return;
        step = await it.next();
      }
      if (state.clientClosed) return;
      const last = rest();
      if (last) await reply.token(last);
      await reply.end(await finish());
      res.end();
    } catch (e) {
      if (state.clientClosed) return;
      // Headers are out: the dialect reports the failure in its stream.
      await reply.fail(report(ctx, e));
      res.end();
    }
  } finally {
    await it.return?.();
  }
}
