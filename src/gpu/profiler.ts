// GPU time per named step, from timestamp queries: one compute pass per step
// (WebGPU timestamps are written at pass boundaries). For `qllm bench
// --profile`; the extra passes cost a little, so profiled runs are not the
// benchmark. Usage per submit: `pass = p.next(enc, pass, label)` before each
// step, `p.resolve(enc)` before finish(), `await p.collect()` once the GPU is done.
import { GpuError } from '../errors.ts';
import type { Engine } from './engine.ts';

export type StepTimes = Map<string, { ms: number; count: number }>;

export class StepProfiler {
  private labels: string[] = [];
  private totals: StepTimes = new Map();
  private readonly queries: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;

  /** capacity: most steps per submit. Needs the timestamp-query feature (see available()). */
  constructor(
    private readonly engine: Engine,
    private readonly capacity: number,
  ) {
    const q = 2 * capacity;
    this.queries = engine.device.createQuerySet({ type: 'timestamp', count: q });
    this.resolveBuf = engine.createBuffer('other', 'profile resolve', q * 8, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
    this.readBuf = engine.createBuffer('staging', 'profile read', q * 8, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  static available(engine: Engine): boolean {
    return engine.features.has('timestamp-query');
  }

  /** True while a submit's queries wait to be collected (a second submit then goes unprofiled). */
  get pending(): boolean {
    return this.labels.length > 0;
  }

  /** Ends `pass` and begins the pass of the next step, timed under `label`. */
  next(enc: GPUCommandEncoder, pass: GPUComputePassEncoder, label: string): GPUComputePassEncoder {
    pass.end();
    const i = this.labels.length;
    if (i >= this.capacity) throw new GpuError(`internal error: more than ${this.capacity} profiled steps in one submit`);
    this.labels.push(label);
    return enc.beginComputePass({ timestampWrites: { querySet: this.queries, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
  }

  /** Records the copy of this submit's timestamps into the readback buffer. */
  resolve(enc: GPUCommandEncoder): void {
    const n = this.labels.length;
    if (!n) return;
    enc.resolveQuerySet(this.queries, 0, 2 * n, this.resolveBuf, 0);
    enc.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, 16 * n);
  }

  /** Adds the finished submit's step times to the totals. */
  async collect(): Promise<void> {
    const n = this.labels.length;
    if (!n) return;
    await this.readBuf.mapAsync(GPUMapMode.READ, 0, 16 * n);
    const ts = new BigUint64Array(this.readBuf.getMappedRange(0, 16 * n).slice(0));
    this.readBuf.unmap();
    for (let i = 0; i < n; i++) {
      const ms = Number(ts[2 * i + 1] - ts[2 * i]) / 1e6;
      const cur = this.totals.get(this.labels[i]) ?? { ms: 0, count: 0 };
      this.totals.set(this.labels[i], { ms: cur.ms + Math.max(ms, 0), count: cur.count + 1 });
    }
    this.labels = [];
  }

  /** The totals since the last call, then cleared. */
  take(): StepTimes {
    const t = this.totals;
    this.totals = new Map();
    return t;
  }

  destroy(): void {
    this.engine.destroyBuffer(this.resolveBuf);
    this.engine.destroyBuffer(this.readBuf);
    this.queries.destroy();
  }
}
