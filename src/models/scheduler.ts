// Several conversations on one model (LoadOptions.parallel): each Session gets
// a view of the model bound to its own sequence (its own region of the KV
// cache), and every forward pass goes through this scheduler, which runs one
// step at a time on the model:
// - the requests of different sequences run together as one batched step
//   (LlamaModel.forwardBatch): every ready decode (one token each), then
//   waiting prompts in arrival order, up to maxBatch tokens; a prompt that
//   does not fit goes in chunks over the next steps (continuous batching: a
//   new conversation's prefill rides along with the others' decode steps).
// - a step waits until every sequence that is generating has its next
//   request in, or WAIT_MS after the model became free (or the first request
//   came, if later), then takes what is there: a sequence whose consumer is
//   slow (sampling with a grammar, a slow client) delays the others by at
//   most that, and is not waited for again until it asks.
// - new prompts with nothing else to run (no decodes, no prompt already
//   under way) wait WAIT_MS for company unless every sequence has a request
//   in: requests that come together (a burst of clients, an agent's fan-out,
//   a batch of conversations starting as others end) are prefilled in one
//   step rather than the first alone and the rest after it.
// - a step of one request takes the model's ordinary path (decode chains,
//   greedy steps queued ahead while no other sequence is generating): one
//   conversation runs exactly as without the scheduler.
// - exclusive work (embeddings) runs as a step of its own, before the next.
// - a request the model would refuse (beyond the context, a token outside the
//   vocabulary) is refused alone when it comes, by the model's own rules
//   (BatchModel.validate), so it never fails the step its neighbours share.
// Sampling stays with each Session (its own options, seed, grammar, logprobs):
// a request asks for either the argmax or the logits row.
import type { BatchResult, BatchRow } from './llama-batch.ts';

/** What the scheduler needs of the model (LlamaModel). */
export interface BatchModel {
  readonly contextLength: number;
  readonly sequences: number;
  /** Most tokens in one step. */
  readonly maxBatch: number;
  forward(tokens: number[], pos: number, opts: { seq: number }): Promise<Float32Array>;
  forwardArgmax(tokens: number[], pos: number, opts: { next?: boolean; seq: number }): Promise<number>;
  forwardBatch(rows: readonly BatchRow[]): Promise<BatchResult>;
  /** Throws what forward() would for this request itself (LlamaModel.validate), whatever the model's state. */
  validate(tokens: number[], pos: number, seq: number): void;
}

/** One sequence's model, as a Session sees it (generate.ts ForwardModel). */
export interface SequenceView {
  readonly contextLength: number;
  readonly seq: number;
  forward(tokens: number[], pos: number): Promise<Float32Array>;
  forwardArgmax(tokens: number[], pos: number, opts?: { next?: boolean }): Promise<number>;
  /** The sequence's generation ended: steps stop waiting for it. */
  end(): void;
  /** Runs `fn` with the model to itself, between steps. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * How long a batched step waits for sequences still sampling. The consumers run
 * between steps in the same event loop, so a ready sequence's next request
 * usually comes within a millisecond; a step takes tens of ms on lavapipe.
 */
export const WAIT_MS = 3;

type Request =
  | { kind: 'forward'; seq: number; tokens: number[]; pos: number; argmax: boolean; next?: boolean; at: number; resolve: (v: Float32Array | number) => void; reject: (e: unknown) => void; chunked?: boolean }
  | { kind: 'exclusive'; run: () => Promise<unknown>; at: number; resolve: (v: unknown) => void; reject: (e: unknown) => void };
type Forward = Extract<Request, { kind: 'forward' }>;
/** A batched step: each request's tokens in it (done: all its remaining ones, so it gets its result). */
interface Step { parts: { r: Forward; tokens: number[]; done: boolean }[] }

export class Scheduler {
  private queue: Request[] = [];
  private running = false;
  /** Sequences expected to ask for their next token soon: those of the last steps, until they end or miss a step. */
  private readonly expected = new Set<number>();
  private timer?: ReturnType<typeof setTimeout>;
  /** When the last step ended. */
  private freeAt = 0;
  /** Steps run, and batched ones (for tests and stats). */
  steps = 0;
  batchedSteps = 0;

  constructor(
    private readonly model: BatchModel,
    private readonly waitMs = WAIT_MS,
  ) {}

  view(seq: number): SequenceView {
    return {
      contextLength: this.model.contextLength,
      seq,
      forward: (tokens, pos) => this.request(seq, tokens, pos, false) as Promise<Float32Array>,
      forwardArgmax: (tokens, pos, o) => this.request(seq, tokens, pos, true, o?.next) as Promise<number>,
      end: () => {
        this.expected.delete(seq);
        this.pump();
      },
      exclusive: (fn) => this.exclusive(fn),
    };
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: 'exclusive', run: fn, at: performance.now(), resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  private request(seq: number, tokens: number[], pos: number, argmax: boolean, next?: boolean): Promise<Float32Array | number> {
    return new Promise((resolve, reject) => {
      try {
        this.model.validate(tokens, pos, seq);
      } catch (e) {
        // Its Session ends on this error: no step waits for its next request.
        this.expected.delete(seq);
        reject(e);
        this.pump();
        return;
      }
      // A sequence has one request in flight (its Session awaits each step); a newer one replaces a stale one.
      this.queue.push({ kind: 'forward', seq, tokens, pos, argmax, next, at: performance.now(), resolve, reject });
      this.expected.add(seq);
      this.pump();
    });
  }

  /** Starts the next step if the model is free and one is due (see the top of the file), else arms the timer. */
  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const now = performance.now();
    const exclusive = this.queue.find((r) => r.kind === 'exclusive');
    const forwards = this.queue.filter((r): r is Forward => r.kind === 'forward');
    const ready = new Set(forwards.map((r) => r.seq));
    const missing = [...this.expected].filter((s) => !ready.has(s));
    const first = Math.min(...forwards.map((r) => r.at));
    const waited = now - Math.max(this.freeAt, first) >= this.waitMs;
    // Fresh prompts alone wait for company (see the top of the file).
    const fresh = forwards.every((r) => r.tokens.length > 1 && !r.chunked) && ready.size < this.model.sequences;
    let step: Request | Step | undefined;
    if (exclusive) step = exclusive;
    else if (forwards.length && ((missing.length === 0 && !fresh) || waited)) {
      step = this.compose(forwards);
      for (const s of missing) this.expected.delete(s); // not waited for again until they ask
    }
    if (!step) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, Math.max(0, Math.max(this.freeAt, first) + this.waitMs - now));
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const taken = 'kind' in step ? [step] : step.parts.filter((p) => p.done).map((p) => p.r);
    this.queue = this.queue.filter((r) => !taken.includes(r));
    this.running = true;
    this.run(step).finally(() => {
      this.running = false;
      this.freeAt = performance.now();
      this.pump();
    });
  }

  /**
   * The next batched step: every decode, then prompts in arrival order, within
   * maxBatch tokens (a prompt that does not fit gives the step a chunk and
   * stays queued for the rest). A lone request goes whole.
   */
  private compose(forwards: Forward[]): Step {
    if (forwards.length === 1) return { parts: [{ r: forwards[0], tokens: forwards[0].tokens, done: true }] };
    const order = [...forwards.filter((r) => r.tokens.length === 1), ...forwards.filter((r) => r.tokens.length > 1)].slice(0, this.model.sequences);
    let room = this.model.maxBatch;
    const parts: Step['parts'] = [];
    for (const r of order) {
      if (room === 0) break;
      const tokens = r.tokens.slice(0, room);
      room -= tokens.length;
      parts.push({ r, tokens, done: tokens.length === r.tokens.length });
    }
    return { parts };
  }

  private async run(step: Request | Step): Promise<void> {
    this.steps++;
    if ('kind' in step) {
      if (step.kind !== 'exclusive') throw new Error('internal error: a forward request outside a step');
      try {
        step.resolve(await step.run());
      } catch (e) {
        step.reject(e);
      }
      return;
    }
    const parts = step.parts;
    try {
      if (parts.length === 1 && parts[0].done) {
        // The ordinary path; the greedy step ahead only when no other sequence shares the model.
        // (A lone chunk of a prompt, the first of two that came together, goes as a batched step:
        // the ordinary path would run the whole prompt and leave its request queued, to run again.)
        const r = parts[0].r;
        const alone = [...this.expected].every((s) => s === r.seq);
        r.resolve(r.argmax ? await this.model.forwardArgmax(r.tokens, r.pos, { next: r.next && alone, seq: r.seq }) : await this.model.forward(r.tokens, r.pos, { seq: r.seq }));
        return;
      }
      this.batchedSteps++;
      const out = await this.model.forwardBatch(parts.map((p) => ({ seq: p.r.seq, tokens: p.tokens, pos: p.r.pos, logits: p.done && !p.r.argmax })));
      for (const [i, p] of parts.entries()) {
        if (p.done) p.r.resolve(p.r.argmax ? out.ids[i] : out.logits[i]!);
        else {
          // A chunk of a prompt: the rest waits for the next step.
          p.r.tokens = p.r.tokens.slice(p.tokens.length);
          p.r.pos += p.tokens.length;
          p.r.chunked = true;
        }
      }
    } catch (e) {
      for (const p of parts) {
        p.r.reject(e);
        if (!p.done) this.queue = this.queue.filter((r) => r !== p.r);
      }
    }
  }
}
