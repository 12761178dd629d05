// The model's slots (`--parallel N` conversations generating at once, see
// slots.ts) and a FIFO of the requests waiting for one, bounded by
// `capacity`. acquire() resolves with a release function when it is the
// caller's turn and a slot is free; `release.slot` says which (the caller's
// `pick` chooses among the free ones: the prompt cache). A full queue, an
// aborted waiter or a drain rejects instead.
import { UsageError } from '../errors.ts';
import { apiError } from './errors.ts';

/** Frees the slot (again: a no-op). */
export type Release = (() => void) & { readonly slot: number };
/** Index into `free` of the slot to take. */
export type Pick = (free: readonly number[]) => number;

interface Waiter { resolve: (release: Release) => void; reject: (e: Error) => void; pick?: Pick; signal?: AbortSignal; onAbort?: () => void }

export class FifoQueue {
  private readonly free: number[];
  private readonly waiters: Waiter[] = [];

  constructor(readonly capacity: number, readonly slots = 1) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new UsageError(`queue capacity ${capacity} is not an integer >= 0: pass e.g. --queue 64`);
    if (!Number.isInteger(slots) || slots < 1) throw new UsageError(`slots ${slots} is not an integer >= 1: pass e.g. --parallel 4`);
    this.free = Array.from({ length: slots }, (_, i) => i);
  }

  get waiting(): number { return this.waiters.length; }
  /** Slots in use. */
  get busy(): number { return this.slots - this.free.length; }
  /** Some slot is in use. */
  get running(): boolean { return this.busy > 0; }

  /** Waits for a slot. Throws a 429 api error when `capacity` requests already wait. */
  acquire(signal?: AbortSignal, pick?: Pick): Promise<Release> {
    if (signal?.aborted) return Promise.reject(apiError(499, 'client closed the request', 'client_closed'));
    if (this.free.length && this.waiters.length === 0) return Promise.resolve(this.grant(pick));
    if (this.waiters.length >= this.capacity) {
      return Promise.reject(apiError(429, `server busy: ${this.waiters.length} requests already queued (--queue ${this.capacity}); retry later`, 'rate_limit_exceeded'));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, pick, signal };
      if (signal) {
        // A client that leaves while waiting frees its place at once.
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(apiError(499, 'client closed the request', 'client_closed'));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /** Rejects every waiting request (used when the server drains). */
  rejectAll(err: Error): void {
    for (const w of this.waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(err);
    }
  }

  /** Takes the free slot `pick` chooses (default the first). */
  private grant(pick?: Pick): Release {
    const i = pick ? pick(this.free) : 0;
    const slot = this.free.splice(i >= 0 && i < this.free.length ? i : 0, 1)[0];
    let done = false;
    const release = () => {
      if (done) return; // releasing twice must not hand the slot to two requests
      done = true;
      this.free.push(slot);
      this.free.sort((a, b) => a - b);
      const next = this.waiters.shift();
      if (!next) return;
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve(this.grant(next.pick));
    };
    return Object.assign(release, { slot });
  }
}
