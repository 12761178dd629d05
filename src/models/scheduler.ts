// Several conversations on one model (LoadOptions.parallel): each Session gets
// a view of the model bound to its own sequence (its own region of the KV
// cache), and every forward pass goes through this scheduler, which runs one
// step at a time on the model:
// - decode requests (one token each) of different sequences run together as
//   one batched step (LlamaModel.forwardBatch). A step waits until every
//   sequence that is generating has its next token ready, or WAIT_MS after
//   the first request came, then takes all that are ready: a sequence whose
//   consumer is slow (sampling with a grammar, a slow client) delays the
//   others by at most that, and joins the next step.
// - a prompt (several tokens) runs as its own step: prefill uses the
//   ordinary prefill path of its sequence. Ready decodes go first, so a burst
//   of new prompts alternates with the running generations' steps.
// - a lone decode request, and any request while only one sequence is
//   generating, takes the ordinary one-token path (decode chains, greedy
//   steps queued ahead): one conversation runs exactly as without the scheduler.
// - exclusive work (embeddings) runs as a step of its own.
// Sampling stays with each Session (its own options, seed, grammar, logprobs):
// a request asks for either the argmax or the logits row.
import type { BatchResult, BatchRow } from './llama-batch.ts';

/** What the scheduler needs of the model (LlamaModel). */
export interface BatchModel {
  readonly contextLength: number;
  readonly sequences: number;
  forward(tokens: number[], pos: number, opts: { seq: number }): Promise<Float32Array>;
  forwardArgmax(tokens: number[], pos: number, opts: { next?: boolean; seq: number }): Promise<number>;
  forwardBatch(rows: readonly BatchRow[]): Promise<BatchResult>;
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
  | { kind: 'forward'; seq: number; tokens: number[]; pos: number; argmax: boolean; next?: boolean; at: number; resolve: (v: Float32Array | number) => void; reject: (e: unknown) => void }
  | { kind: 'exclusive'; run: () => Promise<unknown>; at: number; resolve: (v: unknown) => void; reject: (e: unknown) => void };
type Forward = Extract<Request, { kind: 'forward' }>;

export class Scheduler {
  private queue: Request[] = [];
  private running = false;
  /** Sequences expected to ask for their next token soon: those of the last steps, until they end or miss a step. */
  private readonly expected = new Set<number>();
  private timer?: ReturnType<typeof setTimeout>;
  /** When the last step ended; whether it was a prompt or exclusive work. */
  private freeAt = 0;
  private lastSolo = false;
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
      // A sequence has one request in flight (its Session awaits each step); a newer one replaces a stale one.
      this.queue.push({ kind: 'forward', seq, tokens, pos, argmax, next, at: performance.now(), resolve, reject });
      this.expected.add(seq);
      this.pump();
    });
  }

  /**
   * Starts the next step if the model is free and one is due, else arms the
   * timer. Prompts and exclusive work alternate with decode steps: one runs
   * as soon as the step before it was a decode step (or none), so neither
   * starves the other. A decode step runs once every expected sequence is
   * ready, or WAIT_MS after the model became free (or the first request came,
   * if later); the sequences that missed it are no longer waited for.
   */
  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const now = performance.now();
    const decodes = this.queue.filter((r): r is Forward => r.kind === 'forward' && r.tokens.length === 1);
    const solo = this.queue.find((r) => r.kind === 'exclusive' || r.tokens.length > 1);
    // A sequence whose prompt is queued is not missing from a decode step.
    const ready = new Set(this.queue.flatMap((r) => (r.kind === 'forward' ? [r.seq] : [])));
    const missing = [...this.expected].filter((s) => !ready.has(s));
    const since = Math.max(this.freeAt, decodes.length ? Math.min(...decodes.map((r) => r.at)) : this.freeAt);
    const waited = now - since >= this.waitMs;
    let step: Request[] | undefined;
    if (solo && (!this.lastSolo || (decodes.length === 0 && (missing.length === 0 || waited)))) step = [solo];
    else if (decodes.length && (missing.length === 0 || waited)) {
      step = decodes.slice(0, this.model.sequences);
      for (const s of missing) this.expected.delete(s);
    }
    if (!step) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, Math.max(0, since + this.waitMs - now));
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.lastSolo = step[0] === solo;
    this.queue = this.queue.filter((r) => !step.includes(r));
    this.running = true;
    this.run(step).finally(() => {
      this.running = false;
      this.freeAt = performance.now();
      this.pump();
    });
  }

  private async run(step: Request[]): Promise<void> {
    this.steps++;
    const first = step[0];
    if (first.kind === 'exclusive') {
      try {
        first.resolve(await first.run());
      } catch (e) {
        first.reject(e);
      }
      return;
    }
    const rows = step as Forward[];
    try {
      if (rows.length === 1) {
        // The ordinary path; the greedy step ahead only when no other sequence shares the model.
        const r = first;
        const alone = [...this.expected].every((s) => s === r.seq);
        r.resolve(r.argmax ? await this.model.forwardArgmax(r.tokens, r.pos, { next: r.next && alone, seq: r.seq }) : await this.model.forward(r.tokens, r.pos, { seq: r.seq }));
        return;
      }
      this.batchedSteps++;
      const out = await this.model.forwardBatch(rows.map((r) => ({ seq: r.seq, token: r.tokens[0], pos: r.pos, logits: !r.argmax })));
      for (const [i, r] of rows.entries()) r.resolve(r.argmax ? out.ids[i] : out.logits[i]!);
    } catch (e) {
      for (const r of rows) r.reject(e);
    }
  }
}
