// A small worker pool for `quantize --threads N`: a chunk of rows is split into
// N row ranges encoded in parallel (the K-quant reference encoders are CPU
// bound). qllm runs TypeScript through tsx, whose loader hooks are per thread,
// so each worker first registers tsx and then imports worker.ts. If workers
// cannot start, encoding silently stays on the calling thread.
import { Worker } from 'node:worker_threads';
import { quantize } from '../quant/quantize.ts';
import type { GgmlType } from '../quant/table.ts';

/** Chunks smaller than this are encoded on the calling thread. */
const MIN_PARALLEL = 1 << 18;

interface Pending {
  resolve: (q: Uint8Array) => void;
  reject: (e: Error) => void;
}

export class EncodePool {
  private workers: Worker[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 0;
  private broken = false;

  private started = false;

  constructor(readonly threads: number) {}

  /** Starts the workers on first real use (a small model never pays their ~1 s start). */
  private start(): void {
    this.started = true;
    if (this.threads < 2) return;
    // Built (dist/*.js, the npm package): the worker is plain JavaScript.
    // From sources (a clone): register tsx in the worker first.
    let boot: string;
    if (import.meta.url.endsWith('.js')) {
      boot = `import(${JSON.stringify(new URL('./worker.js', import.meta.url).href)})`;
    } else {
      let api: string;
      try {
        api = import.meta.resolve('tsx/esm/api');
      } catch {
        this.broken = true;
        return;
      }
      const url = new URL('./worker.ts', import.meta.url).href;
      boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
    }
    for (let i = 0; i < this.threads; i++) {
      const w = new Worker(boot, { eval: true });
      w.on('message', (m: { id: number; q?: Uint8Array; error?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.q) p?.resolve(m.q);
        else p?.reject(new Error(m.error ?? 'worker failed'));
      });
      w.on('error', (e) => this.fail(e));
      this.workers.push(w);
    }
  }

  private fail(e: Error): void {
    this.broken = true;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private run(w: Worker, type: GgmlType, x: Float32Array, rowLen: number): Promise<Uint8Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, type, x, rowLen });
    });
  }

  /** Encodes rows of x (rowLen floats each) to `type`; same bytes as quantize(type, x, rowLen). */
  async encode(type: GgmlType, x: Float32Array, rowLen: number): Promise<Uint8Array> {
    const rows = x.length / rowLen;
    if (!this.started && this.threads > 1 && x.length >= MIN_PARALLEL) this.start();
    if (this.broken || this.workers.length < 2 || rows < 2) return quantize(type, x, rowLen);
    const parts = Math.min(this.workers.length, rows);
    const per = Math.ceil(rows / parts);
    try {
      const outs = await Promise.all(
        Array.from({ length: parts }, (_, k) => {
          const r0 = k * per;
          const r1 = Math.min(rows, r0 + per);
          return r0 < r1 ? this.run(this.workers[k], type, x.slice(r0 * rowLen, r1 * rowLen), rowLen) : Promise.resolve(new Uint8Array(0));
        }),
      );
      const out = new Uint8Array(outs.reduce((a, b) => a + b.length, 0));
      let o = 0;
      for (const b of outs) {
        out.set(b, o);
        o += b.length;
      }
      return out;
    } catch {
      this.broken = true;
      return quantize(type, x, rowLen);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
