// Reading a forward pass's results back (LlamaModel): maps `bytes` of a
// readback buffer once the GPU is done with the batch just submitted. Dawn's
// node binding busy-polls while a map is pending, which on a software adapter
// takes a CPU core from the rasteriser. So we first sleep through most of the
// time the same kind of batch took last time, then map with the poll
// throttled (src/gpu/poll.ts). The estimate is an average of measured times,
// except after a sleep that overshot (the map came at once), which shrinks it
// by 15% until the GPU is again the longer of the two.
import { GpuError } from '../errors.ts';
import type { Engine } from '../gpu/engine.ts';
import { pollGapMs, quietly } from '../gpu/poll.ts';

/** Below this expected GPU time a step is awaited at once (timer granularity is ~1 ms). */
const SLEEP_MIN_MS = 3;

export class Readback {
  /** Expected GPU time (ms) of a submit, by kind of batch (its token count, or a batched step's key). */
  private readonly expectMs = new Map<number | string, number>();

  constructor(private readonly engine: Engine) {}

  /** `bytes` of `buf` after the submit of kind `kind` (see expectMs); `after` runs before the buffer is checked for errors. */
  async read(buf: GPUBuffer, bytes: number, kind: number | string, after?: () => Promise<void>): Promise<ArrayBuffer> {
    const t0 = performance.now();
    const expect = this.expectMs.get(kind) ?? 0;
    // Only a software adapter shares the CPU with the poll; on a GPU the timer's ~1 ms granularity would cost more than it saves.
    const sleep = this.engine.adapter.software && expect >= SLEEP_MIN_MS;
    if (sleep) await new Promise((r) => setTimeout(r, expect * 0.85));
    try {
      const t1 = performance.now();
      const gap = pollGapMs(expect);
      await quietly(this.engine, gap, () => buf.mapAsync(GPUMapMode.READ, 0, bytes));
      const t2 = performance.now();
      // Mapped at once after a sleep: the GPU was done first, and t2 - t0 is the
      // sleep plus the timer's lateness. Shrink instead of averaging that in,
      // which on steps of a few ms settled at ~7× the timer's lateness.
      const overslept = sleep && t2 - t1 < 2 * gap;
      this.expectMs.set(kind, overslept ? 0.85 * expect : expect ? 0.5 * expect + 0.5 * (t2 - t0) : t2 - t0);
    } catch (err) {
      this.engine.check();
      throw new GpuError(`reading results from the GPU failed (${(err as Error).message.split('\n')[0]}): restart; if it recurs, try noF16 (--no-f16)`);
    }
    const out = buf.getMappedRange(0, bytes).slice(0);
    buf.unmap();
    await after?.();
    this.engine.check();
    return out;
  }
}
