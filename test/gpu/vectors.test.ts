// GPU matvec of ggml's own quantized tensors (real stories260K weights,
// 64 rows × 256) against ggml's f64 `<type>.matvec`, and GPU gather against
// ggml's `<type>.deq`. Also a split across bindings on real data.
import { describe, expect, it } from 'vitest';
import { openGguf } from '../../src/gguf/index.ts';
import { createGather } from '../../src/gpu/gather.ts';
import { createMatmul } from '../../src/gpu/matmul.ts';
import { uploadTensor } from '../../src/gpu/weights.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { f32Buffer, getTestEngine, nmse, paramsBuffer, readF32 } from './fixture.ts';

const TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'f16', 'bf16'];

describe.skipIf(!hasShared)('GPU kernels on ggml test vectors', async () => {
  const engine = await getTestEngine();
  it.skipIf(!engine).each(TYPES)('%s matvec and gather', async (name) => {
    const e = engine!;
    const file = await openGguf(sharedModel('quant-test-vectors-stories260K-64rows.gguf'));
    try {
      const x = new Float32Array((await file.readTensor(file.tensor('x')!)).slice().buffer);
      const want = new Float32Array((await file.readTensor(file.tensor(`${name}.matvec`)!)).slice().buffer);
      const deq = new Float32Array((await file.readTensor(file.tensor(`${name}.deq`)!)).slice().buffer);
      const t = file.tensor(name)!;
      // Split into 3 parts (24, 24, 16 rows) to cover real data across bindings.
      const rb = t.nBytes / 64;
      const w = await uploadTensor(e, file, t, { maxBindingBytes: rb * 24 + 16 });
      expect(w.parts.length).toBe(3);
      const xb = f32Buffer(e, x);
      const yb = e.createBuffer('activations', 'y', 64 * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      const params = paramsBuffer(e, 1);
      const mv = await createMatmul(e, w, { x: xb, y: yb, params, maxTokens: 1 });
      const ids = new Uint32Array([63, 0, 31, 40]);
      const idb = f32Buffer(e, ids);
      const out = e.createBuffer('activations', 'out', ids.length * 256 * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      const g = await createGather(e, w, { ids: idb, out, params, maxTokens: ids.length });
      const enc = e.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      mv.encode(pass, 1);
      g.encode(pass, ids.length);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const got = await readF32(e, yb, 64 * 4);
      const rows = await readF32(e, out, ids.length * 256 * 4);
      e.check();
      const err = nmse(got, want);
      console.log(`vectors ${name.padEnd(5)} matvec NMSE ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-10);
      ids.forEach((id, i) => {
        expect(Array.from(rows.subarray(i * 256, (i + 1) * 256))).toEqual(Array.from(deq.subarray(id * 256, (id + 1) * 256)));
      });
      for (const b of [xb, yb, params, idb, out, ...w.parts.map((p) => p.buffer)]) e.destroyBuffer(b);
    } finally {
      await file.close();
    }
  });
});
