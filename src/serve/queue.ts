// One model, one generation at a time: a FIFO of waiting requests bounded by
// `capacity`. acquire() resolves with a release function when it is the
// caller's turn; a full queue, an aborted waiter or a drain rejects instead.
import { UsageError } from '../errors.ts';
import { apiError } from './errors.ts';

interface Waiter { resolve: (release: () => void) => void; reject: (e: Error) => void; signal?: AbortSignal; onAbort?: () => void }

export class FifoQueue {
  private busy = false;
  private readonly waiters: Waiter[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new UsageError(`queue capacity ${capacity} is not an integer >= 0: pass e.g. --queue 8`);
  }

  get waiting(): number { return this.waiters.length; }
  get running(): boolean { return this.busy; }

  /** Waits for the model. Throws a 429 api error when `capacity` requests already wait. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(apiError(499, 'client closed the request', 'client_closed'));
    if (!this.busy && this.waiters.length === 0) {
      this.busy = true;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.capacity) {
      return Promise.reject(apiError(429, `server busy: ${this.waiters.length} requests already queued (--queue ${this.capacity}); retry later`, 'rate_limit_exceeded'));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
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

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return; // releasing twice must not hand the model to two requests
      done = true;
      const next = this.waiters.shift();
      if (!next) { this.busy = false; return; }
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve(this.releaser());
    };
  }
}
