// The MXFP4 GPU kernels on ggml's own quantization (test/quant/fixtures/
// mxfp4-vectors.gguf, 4 rows × 256): gather reproduces ggml's dequantization
// bit for bit, and the matvec matches the f64 product of it, on the default,
// GPU-tuning and plain (no f16, no subgroups) configurations.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openGguf } from '../../src/gguf/index.ts';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { createGather } from '../../src/gpu/gather.ts';
import { createMatmul } from '../../src/gpu/matmul.ts';
import { destroyWeight, uploadTensor } from '../../src/gpu/weights.ts';
import { f32Buffer, getTestEngine, nmse, paramsBuffer, readF32, rng } from './fixture.ts';

const FIXTURE = fileURLToPath(new URL('../quant/fixtures/mxfp4-vectors.gguf', import.meta.url));
const CONFIGS: [string, EngineOptions][] = [['default', {}], ['gpu tuning', { tuning: 'gpu' }], ['plain', { noF16: true, noSubgroups: true }]];

describe.each(CONFIGS)('MXFP4 on ggml vectors (%s)', async (_name, opts) => {
  const engine = await getTestEngine(opts);
  it.skipIf(!engine)('gather is bit-exact and the matvec matches', async () => {
    const e = engine!;
    const file = await openGguf(FIXTURE);
    try {
      const deqBytes = await file.readTensor(file.tensor('mxfp4.deq')!);
      const deq = new Float32Array(deqBytes.slice().buffer);
      const t = file.tensor('mxfp4')!;
      const w = await uploadTensor(e, file, t, { maxBindingBytes: (t.nBytes / 4) * 2 + 16 }); // 2 parts of 2 rows
      expect(w.parts.length).toBe(2);
      const rand = rng(39);
      const x = new Float32Array(256).map(() => rand() * 2 - 1);
      const want = Array.from({ length: 4 }, (_, r) => deq.subarray(r * 256, (r + 1) * 256).reduce((s, v, k) => s + v * x[k], 0));
      const xb = f32Buffer(e, x);
      const yb = e.createBuffer('activations', 'y', 16, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      const params = paramsBuffer(e, 1);
      const mv = await createMatmul(e, w, { x: xb, y: yb, params, maxTokens: 1 });
      const ids = new Uint32Array([3, 0, 2, 1]);
      const idb = f32Buffer(e, ids);
      const out = e.createBuffer('activations', 'out', 4 * 256 * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      const g = await createGather(e, w, { ids: idb, out, params, maxTokens: 4 });
      const enc = e.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      mv.encode(pass, 1);
      g.encode(pass, 4);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const got = await readF32(e, yb, 16);
      const rows = await readF32(e, out, 4 * 256 * 4);
      e.check();
      expect(nmse(got, want)).toBeLessThan(1e-12);
      ids.forEach((id, i) => {
        expect(Array.from(new Uint32Array(rows.buffer, i * 1024, 256))).toEqual(Array.from(new Uint32Array(deq.buffer, id * 1024, 256)));
      });
      for (const b of [xb, yb, params, idb, out]) e.destroyBuffer(b);
      destroyWeight(e, w);
    } finally {
      await file.close();
    }
  });
});
