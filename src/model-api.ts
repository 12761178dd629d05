// loadModel(): the library entry point. Wires file → config → engine → weights →
// tokenizer → generation session, and exposes the `Model` contract of api.ts.
import type { ChatMessage, ChatOptions, Embedding, EmbedOptions, GenerateOptions, Generation, GenerationStats, GpuBytes, LoadOptions, Model, ModelInfo, ModelSession, Token } from './api.ts';
import { readConfig, type Config } from './config.ts';
import { GgufError, isQllmError, printable, UsageError } from './errors.ts';
import { poolingFor, pool } from './embed.ts';
import { Session, systemPrefix } from './generate.ts';
import type { GgufFile } from './gguf/types.ts';
import { Engine } from './gpu/engine.ts';
import { describeModel } from './info.ts';
import { LlamaModel } from './models/llama.ts';
import { checkSequences } from './models/llama-batch.ts';
import { Scheduler } from './models/scheduler.ts';
import { checkModel } from './models/llama-tensors.ts';
import { checkKvType, kvCacheBytes, parseKvType } from './models/kv-cache.ts';
import { checkMemoryPlan, planMemory, validateBudget } from './models/memory-plan.ts';
import { openModelFile } from './open.ts';
import { mergeDeltas, ReasoningParser, type ReasoningSyntax, reasoningSyntax, thinkingOpen } from './reasoning.ts';
import { renderChat } from './tokenizer/chat.ts';
import { Tokenizer } from './tokenizer/index.ts';
import { TokenType } from './tokenizer/vocab.ts';
import { harmonyCallNames, type MarkerLookup, markerGbnf, planTools, replyMessage, silentMarkers, type ToolPlan } from './tools/index.ts';

export class QllmModel implements Model {
  readonly session: Session;
  /** Runs every session's steps on the model, batching concurrent decodes (models/scheduler.ts). */
  readonly scheduler: Scheduler;
  readonly mainSession: ModelSession;
  /** Set when the last chat() fell back to the default template (the CLI prints a note). */
  usedDefaultTemplate = false;
  private disposed = false;
  /** Sequences 1… not held by a session (0 is the model's own). */
  private readonly freeSeqs: number[];

  constructor(
    readonly info: ModelInfo,
    readonly config: Config,
    readonly engine: Engine,
    readonly llama: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly file: GgufFile,
  ) {
    this.scheduler = new Scheduler(llama);
    this.session = new Session(this.scheduler.view(0), tokenizer);
    this.mainSession = new QllmSession(this, this.session);
    this.freeSeqs = Array.from({ length: llama.sequences - 1 }, (_, i) => i + 1);
  }

  createSession(): ModelSession {
    if (this.disposed) throw new UsageError('this model was disposed: load it again with loadModel()');
    const seq = this.freeSeqs.shift();
    const n = this.llama.sequences;
    if (seq === undefined && n === 1) throw new UsageError('this model holds one conversation (its own generate()/chat()): load it with parallel 2 or more (LoadOptions.parallel) to create sessions');
    if (seq === undefined) throw new UsageError(`all ${n} sequences of this model are in use (its own generate()/chat() and ${n - 1} sessions): dispose() a session, or load with parallel ${n + 1}`);
    return new QllmSession(this, new Session(this.scheduler.view(seq), this.tokenizer), () => this.freeSeqs.push(seq));
  }

  tokenize(text: string, opts: { addBos?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { addBos: opts.addBos });
  }

  detokenize(ids: number[]): string {
    return this.tokenizer.decode(ids);
  }

  generate(prompt: string, opts: GenerateOptions = {}): Generation {
    return this.generateOn(this.session, prompt, opts);
  }

  chat(messages: ChatMessage[], opts: ChatOptions = {}): Generation {
    return this.chatOn(this.session, messages, opts);
  }

  /** generate() on a session's cache (the model's own, or one of createSession()'s). */
  generateOn(session: Session, prompt: string, opts: GenerateOptions = {}): Generation {
    return this.start(session, () => this.tokenizer.encode(prompt, { addBos: opts.addBos }), opts);
  }

  chatOn(session: Session, messages: ChatMessage[], opts: ChatOptions = {}): Generation {
    const { tools, toolChoice, parallelToolCalls, reasoningFormat, ...gen } = opts;
    // A conversation keeps going past the context (context shift), keeping its system prompt.
    gen.contextShift ??= true;
    const reply: Reply = {};
    return this.start(session, () => {
      const tc = this.config.tokenizer!;
      if (tools !== undefined || toolChoice !== undefined) {
        const lookup = this.markerLookup();
        // A JSON schema beside tools is the schema of a reply that is not a call (only the generic format has one).
        const schema = gen.jsonSchema !== undefined && toolChoice !== 'none' ? { responseSchema: gen.jsonSchema } : {};
        reply.plan = planTools(tc.chatTemplate, { tools: tools ?? [], choice: toolChoice, parallel: parallelToolCalls, ...schema }, markerGbnf(lookup), this.config.arch);
        reply.silent = silentMarkers(reply.plan, lookup);
        if (reply.plan.grammar !== undefined) {
          if (gen.grammar !== undefined) throw new UsageError('a grammar cannot be combined with tools that constrain the reply (a forced call, or the generic JSON format): drop it');
          gen.grammar = reply.plan.grammar;
          delete gen.jsonSchema;
        }
      }
      // Templates usually write the BOS text themselves (then addBos is false); it parses as a special token.
      const { text, usedDefault, addBos } = renderChat(tc, messages, { addGenerationPrompt: true, tools: reply.plan?.render.tools, system: reply.plan?.render.system });
      this.usedDefaultTemplate = usedDefault;
      // A reasoning model's thinking is split from its answer (src/reasoning.ts).
      const syntax = reasoningFormat === 'none' ? 'none' : reasoningSyntax(this.config.arch, usedDefault ? undefined : tc.chatTemplate);
      // A gpt-oss reply read for tool calls: the splitter hands the call messages on (src/tools/harmony.ts).
      if (syntax !== 'none') reply.reasoning = { syntax, open: thinkingOpen(syntax, text), calls: harmonyCallNames(reply.plan) };
      const ids = this.tokenizer.encode(text, { addBos: opts.addBos ?? addBos, parseSpecial: true });
      // A context shift keeps the system turn (with any tools it shows), else the BOS.
      if (gen.contextShift && gen.keepTokens === undefined) {
        const render = { addGenerationPrompt: false, tools: reply.plan?.render.tools, system: reply.plan?.render.system };
        gen.keepTokens = systemPrefix(messages, ids, (sys) => this.tokenizer.encode(renderChat(tc, sys, render).text, { addBos: opts.addBos ?? addBos, parseSpecial: true }));
      }
      return ids;
    }, gen, reply);
  }

  /** A marker that is one special token of this vocabulary (tools: [TOOL_CALLS], <|python_tag|>, …). */
  private markerLookup(): MarkerLookup {
    return (text) => {
      const ids = this.tokenizer.encode(text, { addBos: false, parseSpecial: true });
      if (ids.length !== 1) return undefined;
      const type = this.tokenizer.tokenType(ids[0]);
      if (type !== TokenType.Control && type !== TokenType.UserDefined) return undefined;
      return { id: ids[0], silent: type === TokenType.Control };
    };
  }

  async embed(texts: string | string[], opts: EmbedOptions = {}): Promise<Embedding[]> {
    if (this.disposed) throw new UsageError('this model was disposed: load it again with loadModel()');
    const list = Array.isArray(texts) ? texts : [texts];
    if (list.some((t) => typeof t !== 'string')) throw new UsageError('embed() takes a string or an array of strings');
    if (!this.config.causal) throw new UsageError(`${this.info.name} is a bidirectional (encoder) model: qllm embeds with causal models only, e.g. Qwen3-Embedding`);
    const pooling = poolingFor(this.config.poolingType, opts.pooling);
    const special = opts.addSpecial ?? true;
    // Every text is checked before the model is taken.
    const ids = list.map((t, i) => {
      const x = this.tokenizer.encode(t, special ? {} : { addBos: false, addEos: false });
      if (x.length === 0) throw new UsageError(`text ${i} is empty and the model adds no BOS: nothing to embed`);
      if (x.length > this.info.contextLength) throw new UsageError(`text ${i} is ${x.length} tokens, more than the context of ${this.info.contextLength}: shorten it or raise contextLength (-c)`);
      return x;
    });
    const dim = this.config.dim;
    return this.session.exclusive(async () => {
      const out: Embedding[] = [];
      for (const x of ids) out.push({ embedding: pool(await this.llama.hidden(x, 0), x.length, dim, pooling, opts.normalize ?? true), tokens: x.length });
      return out;
    });
  }

  memory(): GpuBytes {
    const m = this.engine.memory().byCategory;
    const other = m.other + m.staging;
    return { weights: m.weights, kv: m.kv, activations: m.activations, other, total: m.weights + m.kv + m.activations + other };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.llama.dispose();
    this.engine.destroy();
    void this.file.close();
  }

  /** `reply`: filled in by promptIds() for a chat with tools (how to split the reply; markers printed as nothing). */
  private start(session: Session, promptIds: () => number[], opts: GenerateOptions, reply: Reply = {}): Generation {
    if (this.disposed) throw new UsageError('this model was disposed: load it again with loadModel()');
    let resolveStats!: (s: GenerationStats) => void;
    let rejectStats!: (e: unknown) => void;
    let resolveIds!: (ids: number[]) => void;
    let rejectIds!: (e: unknown) => void;
    const stats = new Promise<GenerationStats>((res, rej) => {
      resolveStats = res;
      rejectStats = rej;
    });
    const ids = new Promise<number[]>((res, rej) => {
      resolveIds = res;
      rejectIds = rej;
    });
    let resolveMessage!: (m: ChatMessage) => void;
    let rejectMessage!: (e: unknown) => void;
    const message = new Promise<ChatMessage>((res, rej) => {
      resolveMessage = res;
      rejectMessage = rej;
    });
    // Callers that only iterate must not see unhandled rejections from these.
    stats.catch(() => {});
    ids.catch(() => {});
    message.catch(() => {});
    async function* iterate(): AsyncGenerator<Token> {
      let p: number[];
      try {
        p = promptIds();
        resolveIds(p);
      } catch (e) {
        rejectIds(e);
        rejectStats(e);
        rejectMessage(e);
        throw e;
      }
      let text = '';
      let thinking = '';
      let failed = false;
      let split = reply.reasoning && new ReasoningParser(reply.reasoning.syntax, { open: reply.reasoning.open, calls: reply.reasoning.calls });
      /** What the splitter still holds (a tag's possible start), once. */
      const flush = () => {
        const d = mergeDeltas(split?.finish() ?? []);
        split = undefined;
        text += d.content;
        thinking += d.reasoning;
        return d;
      };
      try {
        for await (const t of session.generate(p, opts, resolveStats)) {
          // A tool-call marker that is a control token prints as nothing; the reply keeps its text.
          const marked = t.text === '' && reply.silent?.get(t.tokenId);
          let tok: Token = marked ? { ...t, text: marked } : t;
          if (split) {
            const d = mergeDeltas(split.push(tok.text));
            tok = { ...tok, text: d.content, ...(d.reasoning ? { reasoning: d.reasoning } : {}) };
            thinking += d.reasoning;
          }
          text += tok.text;
          yield tok;
        }
        if (split) {
          const d = flush();
          if (d.content || d.reasoning) yield { text: d.content, tokenId: -1, ...(d.reasoning ? { reasoning: d.reasoning } : {}) };
        }
      } catch (e) {
        failed = true;
        rejectStats(e);
        rejectMessage(e);
        throw e;
      } finally {
        // Also when the caller stops early (return()): the reply so far.
        if (!failed) {
          flush();
          resolveMessage({ ...replyMessage(reply.plan, text), ...(thinking ? { reasoning: thinking } : {}) });
        }
      }
    }
    const it = iterate();
    return { [Symbol.asyncIterator]: () => it, stats, promptIds: ids, message };
  }
}

/** How chat() reads a reply: tool calls (plan; markers printed as nothing) and a reasoning model's thinking. */
interface Reply {
  plan?: ToolPlan;
  silent?: Map<number, string>;
  reasoning?: { syntax: ReasoningSyntax; open: boolean; calls?: ReadonlySet<string> };
}

/** A conversation on its own sequence of the model's KV cache (Model.createSession). */
class QllmSession implements ModelSession {
  private disposed = false;

  constructor(
    private readonly model: QllmModel,
    private readonly session: Session,
    /** Hands the sequence back; absent for the model's own session, which dispose() leaves alone. */
    private readonly release?: () => void,
  ) {}

  generate(prompt: string, opts?: GenerateOptions): Generation {
    this.check();
    return this.model.generateOn(this.session, prompt, opts);
  }

  chat(messages: ChatMessage[], opts?: ChatOptions): Generation {
    this.check();
    return this.model.chatOn(this.session, messages, opts);
  }

  cachedTokens(ids: number[]): number {
    return this.session.commonPrefix(ids);
  }

  reset(): void {
    this.session.reset();
  }

  dispose(): void {
    if (this.disposed || !this.release) return;
    this.disposed = true;
    this.session.reset();
    // A generation still running is superseded, and the sequence goes back once its step is off the GPU.
    if (this.session.idle) this.release();
    else void this.session.exclusive(async () => {}).finally(this.release);
  }

  private check(): void {
    if (this.disposed) throw new UsageError('this session was disposed: create another with model.createSession()');
  }
}

/** Loads a GGUF model onto the GPU. Throws GgufError/GpuError/UsageError with a one-line fix. */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<QllmModel> {
  return loadGguf(await openModelFile(path), path, opts);
}

/**
 * Loads an opened GGUF (a file on disk, or any ByteSource: a browser Blob or
 * URL) onto the GPU; `path` names it in messages. Owns `file` from here on:
 * closes it on failure, and on dispose().
 */
export async function loadGguf(file: GgufFile, path: string, opts: LoadOptions = {}): Promise<QllmModel> {
  let engine: Engine | undefined;
  try {
    const config = readConfig(file);
    if (!config.tokenizer) throw new GgufError(`${path} has no tokenizer (tokenizer.ggml.model is missing): use a GGUF converted with its vocabulary`);
    const modelCtx = config.contextLength || 2048;
    const contextLength = opts.contextLength ?? Math.min(modelCtx, 2048);
    if (!Number.isInteger(contextLength) || contextLength < 2) throw new UsageError(`contextLength ${contextLength} must be an integer ≥ 2: pass e.g. contextLength 2048 (-c 2048)`);
    if (contextLength > modelCtx) throw new UsageError(`contextLength ${contextLength} exceeds the model's ${modelCtx}: pass contextLength ${modelCtx} (-c ${modelCtx}) or less`);
    const budget = validateBudget(opts.memoryBudget);
    // Architecture, shapes, tensor types and memory, before the device is opened: the plan with
    // an f16 KV cache and no split attention is the least any adapter needs.
    const tensors = checkModel(file, config, contextLength);
    const kvType = parseKvType(opts.kvType);
    if (kvType) checkKvType(kvType, config);
    const sequences = checkSequences(opts.parallel, Math.min(64, contextLength));
    const planAt = (n: number) => planMemory(config, tensors, { contextLength: n, kvF16: !opts.noF16, kvType, splitAttention: false, sequences });
    checkMemoryPlan(planAt(contextLength), undefined, budget, planAt);
    const tokenizer = Tokenizer.fromConfig(config.tokenizer);
    engine = await Engine.create({ noF16: opts.noF16, noSubgroups: opts.noSubgroups, memoryBudget: opts.memoryBudget });
    const llama = await LlamaModel.load(engine, file, config, { contextLength, onProgress: opts.onProgress, signal: opts.signal, kvType, sequences });
    const report = describeModel(file);
    const a = engine.adapter;
    const info: ModelInfo = {
      name: printable(config.name) || path.replace(/^.*[\\/]/, '').replace(/\.gguf$/i, ''),
      architecture: printable(config.arch),
      contextLength,
      vocabSize: config.vocabSize,
      fileBytes: file.fileSize,
      f16WeightBytes: report.memory.weights_f16_bytes,
      kvType: llama.kvType,
      kvF16Bytes: kvCacheBytes('f16', config, contextLength),
      adapter: [a.vendor, a.architecture, a.description, a.backend].filter(Boolean).join(' / '),
      parallel: sequences,
    };
    return new QllmModel(info, config, engine, llama, tokenizer, file);
  } catch (e) {
    engine?.destroy();
    await file.close();
    // A last guard for strings from the file that some message did not escape (the tokenizer's names).
    if (isQllmError(e)) e.message = printable(e.message, Number.POSITIVE_INFINITY);
    throw e;
  }
}
