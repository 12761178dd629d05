// The adapter's copy bandwidth: how fast it can stream a buffer, measured with
// copyBufferToBuffer (no shader, so it is the same yardstick on every adapter).
// Reported as GB/s of bytes READ, the same unit as a matvec's weight bandwidth,
// so decode GB/s ÷ copy GB/s is the bandwidth utilisation.
import type { Engine } from './engine.ts';
import { quietly } from './poll.ts';

export async function copyBandwidth(engine: Engine, bytes = 64 << 20, reps = 8): Promise<number> {
  const size = Math.min(bytes, engine.limits.maxBufferSize) & ~3;
  const src = engine.createBuffer('other', 'bandwidth-src', size, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
  const dst = engine.createBuffer('other', 'bandwidth-dst', size, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
  try {
    const d = engine.device;
    const run = async (n: number) => {
      const enc = d.createCommandEncoder();
      for (let i = 0; i < n; i++) enc.copyBufferToBuffer(i % 2 ? dst : src, 0, i % 2 ? src : dst, 0, size);
      const t = performance.now();
      d.queue.submit([enc.finish()]);
      await quietly(engine, 0.1, () => d.queue.onSubmittedWorkDone());
      return performance.now() - t;
    };
    await run(2); // warm-up: first touch of the pages
    const ms = await run(reps);
    return (size * reps) / (ms / 1000) / 1e9;
  } finally {
    engine.destroyBuffer(src);
    engine.destroyBuffer(dst);
  }
}
