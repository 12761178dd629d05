// The generation loop, separate from the model, tokenizer and sampler: feed the
// prompt (reusing whatever prefix is already in the KV cache), then sample one
// token at a time until EOS, a stop string, the token limit, or an abort.
import type { ChatMessage, GenerateOptions, GenerationStats, Token, TokenLogprob } from './api.ts';
import { UsageError } from './errors.ts';
import { constraintFor, type GrammarConstraint } from './grammar/index.ts';
import { logprobsOf, Sampler, validateSamplerOptions } from './sampler.ts';

/** What the loop needs of a model: a KV cache of `contextLength` positions. */
export interface ForwardModel {
  readonly contextLength: number;
  /** Runs tokens at pos.., returns the last token's logits [vocab]. */
  forward(tokens: number[], pos: number): Promise<Float32Array>;
  /**
   * Same, but only the argmax id comes back from the GPU (greedy decoding).
   * `next`: the caller will feed that id back at the next position, so the
   * model may start that step before this one's result is read.
   */
  forwardArgmax(tokens: number[], pos: number, opts?: { next?: boolean }): Promise<number>;
  /**
   * A model shared by several sessions (models/scheduler.ts): this session's
   * generation ended, so batched steps stop waiting for it; and work that
   * must have the model to itself (exclusive()) runs between steps.
   */
  end?(): void;
  exclusive?<T>(fn: () => Promise<T>): Promise<T>;
}

/** What the loop needs of a tokenizer. */
export interface LoopTokenizer {
  readonly vocabSize: number;
  isEog(id: number): boolean;
  streamDecoder(opts: { stripLeadingSpace: boolean }): { push(id: number): string; flush(): string };
}

/** What the next next() of a generation that a newer one replaced throws. */
export const SUPERSEDED = 'this generation was superseded by a newer generate() or chat() on the same model: finish, return() or abort a generation before starting the next (or queue them)';

/**
 * Owns the KV-cache bookkeeping for one model: which token ids the cache holds,
 * so a follow-up prompt that extends the last one (a chat turn) only pays for
 * its new tokens. One generation owns the cache at a time: a newer one
 * supersedes it (see Model.generate in api.ts). The newer one waits only for a
 * forward pass already on the GPU, never for the older one's consumer, which
 * may have dropped its iterator without return().
 */
export class Session {
  /** Ids whose K/V are in the cache, in order (position i holds cached[i]). */
  private cached: number[] = [];
  /** The generation that owns the cache; cancel() marks it superseded and settles its stats. */
  private owner?: { superseded: boolean; cancel(): void };
  /** The forward step in flight (with its cache bookkeeping), if any. */
  private inflight: Promise<unknown> = Promise.resolve();

  constructor(
    readonly model: ForwardModel,
    readonly tokenizer: LoopTokenizer,
  ) {}

  /** Forget the cache (e.g. a new chat). */
  reset(): void {
    this.cached = [];
  }

  /** No generation owns the cache (none running, none left unfinished). */
  get idle(): boolean {
    return !this.owner;
  }

  /** How many leading tokens of `ids` the cache already holds (a new prompt would reuse them; at most ids.length - 1). */
  commonPrefix(ids: readonly number[]): number {
    let n = 0;
    while (n < this.cached.length && n < ids.length - 1 && this.cached[n] === ids[n]) n++;
    return n;
  }

  /** Supersedes the cache's owner, then waits for its step on the GPU (not for its consumer). */
  private async claim(): Promise<{ superseded: boolean; cancel(): void }> {
    const me = {
      superseded: false,
      cancel: () => {
        me.superseded = true;
      },
    };
    this.owner?.cancel();
    this.owner = me;
    await this.inflight.catch(() => {});
    return me;
  }

  /**
   * Runs `fn` with the model to itself (embeddings): supersedes a generation in
   * progress as a newer generate() would, waits for its step on the GPU, and
   * forgets the cache afterwards, since `fn` overwrites it.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const me = await this.claim();
    try {
      const p = this.model.exclusive ? this.model.exclusive(fn) : fn();
      this.inflight = p;
      return await p;
    } finally {
      this.cached = [];
      if (this.owner === me) this.owner = undefined;
    }
  }

  /** Streams tokens for `promptIds`; `done` receives the stats at the end. */
  async *generate(promptIds: number[], opts: GenerateOptions, done: (s: GenerationStats) => void): AsyncGenerator<Token> {
    validateSamplerOptions(opts);
    const ctx = this.model.contextLength;
    if (promptIds.length === 0) throw new UsageError('the prompt is empty and the model adds no BOS: give a prompt');
    if (opts.keepTokens !== undefined && (!Number.isInteger(opts.keepTokens) || opts.keepTokens < -1)) {
      throw new UsageError(`keepTokens ${opts.keepTokens} must be an integer >= 0 (tokens a context shift never drops), or -1 (the whole prompt)`);
    }
    // Counted on the prompt as given (keepTokens -1: all of it), before any cut.
    const nKeep = this.keepOf(opts, ctx, promptIds.length);
    let dropped = 0;
    if (opts.contextShift && promptIds.length >= ctx) {
      const cut = truncatePrompt(promptIds, ctx, nKeep);
      dropped = promptIds.length - cut.length;
      promptIds = cut;
    }
    if (promptIds.length >= ctx) throw new UsageError(`prompt of ${promptIds.length} tokens does not fit the context of ${ctx}: raise contextLength (-c) up to the model's context length, or shorten the prompt`);
    if (opts.maxTokens !== undefined && (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1)) {
      throw new UsageError(`max tokens ${opts.maxTokens} must be a positive integer: pass e.g. maxTokens 128 (-n 128)`);
    }
    if (opts.logprobs !== undefined && (!Number.isInteger(opts.logprobs) || opts.logprobs < 0 || opts.logprobs > 20)) {
      throw new UsageError(`logprobs ${opts.logprobs} must be an integer in 0..20 (the alternatives reported per token): pass e.g. logprobs: 5`);
    }
    // A grammar or JSON schema compiles (or fails) before this generation takes the model.
    const grammar = constraintFor(opts, this.tokenizer);
    const me = await this.claim();
    if (me.superseded) throw new UsageError(SUPERSEDED);
    try {
      yield* this.run(promptIds, opts, nKeep, (s) => done(dropped ? { ...s, droppedPromptTokens: dropped } : s), me, grammar);
    } finally {
      if (this.owner === me) this.owner = undefined;
    }
  }

  /** Tokens a shift keeps at the start: keepTokens (-1: the whole prompt), capped so that a shift always frees room. */
  private keepOf(opts: GenerateOptions, ctx: number, promptLength: number): number {
    const keep = opts.keepTokens === -1 ? promptLength : (opts.keepTokens ?? 1);
    return Math.min(keep, Math.floor(ctx / 2));
  }

  private async *run(promptIds: number[], opts: GenerateOptions, nKeep: number, done: (s: GenerationStats) => void, me: { superseded: boolean; cancel(): void }, grammar?: GrammarConstraint): AsyncGenerator<Token> {
    const t0 = performance.now();
    const ctx = this.model.contextLength;
    // With context shift the reply may outgrow the context; maxTokens bounds it.
    const shift = opts.contextShift === true;
    const maxNew = shift ? (opts.maxTokens ?? 256) : Math.min(opts.maxTokens ?? 256, ctx - promptIds.length);
    let shifts = 0;
    const temperature = opts.temperature ?? 0.8;
    const penalty = opts.repeatPenalty ?? 1;
    // Logprobs need the whole logits row back from the GPU, and so does a grammar (to mask it).
    const greedyOnGpu = temperature === 0 && penalty === 1 && opts.logprobs === undefined && !grammar;
    const sampler = new Sampler({ ...opts, temperature }, this.tokenizer.vocabSize);
    const stops = (opts.stop ?? []).filter((s) => s.length > 0);
    // The text continues the prompt, so SentencePiece's leading space is real here.
    const decoder = this.tokenizer.streamDecoder({ stripLeadingSpace: false });
    const history = [...promptIds];

    // Reuse the cached prefix; at least one token must be fed to get logits.
    const keep = this.commonPrefix(promptIds);
    this.cached.length = keep;
    let feed = promptIds.slice(keep);
    let pos = keep;

    let stopReason: GenerationStats['stopReason'] = 'length';
    let generated = 0;
    let ttft = 0;
    let prefillMs = 0;
    let tDecode = 0;
    let held = ''; // text withheld because it might be the start of a stop string
    let emittedTail = '';

    let lp: { logprob: number; topLogprobs: TokenLogprob[] } | undefined; // the last step's, with opts.logprobs
    const step = async (): Promise<number> => {
      if (shift && pos + feed.length > ctx) {
        // llama.cpp's context shift: keep the first nKeep, drop half of the rest
        // (the oldest). The kept tail moves to new positions, so its K/V (RoPE'd
        // at the old ones) is recomputed: it is fed again with this step's tokens.
        const all = [...this.cached, ...feed];
        const discard = Math.max(Math.floor((this.cached.length - nKeep) / 2), all.length - ctx);
        this.cached.length = nKeep;
        feed = all.slice(nKeep + discard);
        pos = nKeep;
        shifts++;
      }
      const n = feed.length;
      const start = pos;
      let id: number;
      // Queue the next greedy step ahead only if it will fit without a shift.
      if (greedyOnGpu) id = await this.model.forwardArgmax(feed, start, { next: generated + 1 < maxNew && start + n + 1 <= ctx });
      else {
        const logits = await this.model.forward(feed, start);
        id = grammar ? grammar.sample(sampler, logits, history) : sampler.sample(logits, history);
        if (opts.logprobs !== undefined) lp = logprobsOf(logits, this.tokenizer.vocabSize, id, opts.logprobs);
      }
      this.cached.push(...feed);
      pos += n;
      return id;
    };
    const stats = (): GenerationStats => {
      const decodeMs = tDecode ? performance.now() - tDecode : 0;
      return {
        promptTokens: promptIds.length,
        generatedTokens: generated,
        ttftMs: ttft,
        prefillTokPerS: prefillMs > 0 ? ((promptIds.length - keep) / prefillMs) * 1000 : 0,
        decodeTokPerS: decodeMs > 0 && generated > 1 ? ((generated - 1) / decodeMs) * 1000 : 0,
        stopReason,
        cachedTokens: keep,
        ...(shifts ? { contextShifts: shifts } : {}),
      };
    };
    // Superseded: the stats settle now (as an abort), since a dropped iterator never reaches `finally`.
    me.cancel = () => {
      me.superseded = true;
      stopReason = 'abort';
      done(stats());
    };

    try {
      while (generated < maxNew) {
        if (me.superseded) throw new UsageError(SUPERSEDED);
        if (opts.signal?.aborted) {
          stopReason = 'abort';
          break;
        }
        const pending = step();
        this.inflight = pending;
        const id = await pending;
        if (me.superseded) throw new UsageError(SUPERSEDED);
        generated++;
        if (generated === 1) {
          ttft = performance.now() - t0;
          prefillMs = ttft;
          tDecode = performance.now();
        }
        history.push(id);
        feed = [id];
        if (this.tokenizer.isEog(id)) {
          stopReason = 'eos';
          break;
        }
        grammar?.accept(id);
        held += decoder.push(id);
        if (stops.length) {
          const window = emittedTail + held;
          const hit = firstStop(window, stops);
          if (hit >= 0) {
            const out = window.slice(emittedTail.length, Math.max(emittedTail.length, hit));
            if (out) yield { text: out, tokenId: id, ...lp };
            stopReason = 'stop';
            break;
          }
          // Emit all but the longest suffix that could still grow into a stop string.
          const keepBack = partialStopSuffix(held, stops);
          const out = held.slice(0, held.length - keepBack);
          held = held.slice(held.length - keepBack);
          emittedTail = (emittedTail + out).slice(-Math.max(...stops.map((s) => s.length)));
          yield { text: out, tokenId: id, ...lp };
        } else {
          yield { text: held, tokenId: id, ...lp };
          held = '';
        }
        // The grammar is complete and nothing can follow: EOS is the only choice left.
        if (grammar?.done) {
          stopReason = 'eos';
          break;
        }
      }
      if (stopReason === 'length' || stopReason === 'eos' || stopReason === 'abort') {
        const rest = held + decoder.flush();
        if (rest) yield { text: rest, tokenId: -1 };
      }
    } finally {
      if (!me.superseded) {
        done(stats());
        this.model.end?.();
      }
    }
  }
}

/**
 * A prompt that does not fit, cut as llama.cpp's server does: keep the first
 * `keep` tokens, then drop whole blocks of half the remaining room from the
 * start of the rest until the prompt fits with room left to generate.
 */
export function truncatePrompt(ids: number[], ctx: number, keep: number): number[] {
  const block = Math.max(1, Math.floor((ctx - keep) / 2));
  const erased = Math.ceil((ids.length - keep - block) / block);
  return erased > 0 ? [...ids.slice(0, keep), ...ids.slice(keep + erased * block)] : ids;
}

/**
 * How many of a chat prompt's `ids` are its leading system messages (what a
 * context shift keeps by default); undefined when there are none, or when they
 * do not render to the same tokens on their own (`renderAlone`: the system
 * messages rendered and tokenized as the prompt was, without the generation
 * prompt; a template may refuse them alone).
 */
export function systemPrefix(messages: readonly ChatMessage[], ids: readonly number[], renderAlone: (system: ChatMessage[]) => number[]): number | undefined {
  let n = 0;
  while (n < messages.length && messages[n].role === 'system') n++;
  if (n === 0) return undefined;
  try {
    const prefix = renderAlone(messages.slice(0, n));
    return prefix.length < ids.length && prefix.every((t, i) => t === ids[i]) ? prefix.length : undefined;
  } catch {
    return undefined;
  }
}

/** Index of the earliest stop-string match in s, or -1. */
function firstStop(s: string, stops: string[]): number {
  let best = -1;
  for (const st of stops) {
    const i = s.indexOf(st);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of s that is a proper prefix of some stop string. */
function partialStopSuffix(s: string, stops: string[]): number {
  let best = 0;
  for (const st of stops) {
    for (let k = Math.min(st.length - 1, s.length); k > best; k--) {
      if (s.endsWith(st.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}
