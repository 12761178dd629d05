// Every format × kernel (matvec, matmul, gather) × path (f16+subgroups, plain
// f32) against the CPU reference dequantizer on fresh random blocks. Shapes
// are awkward on purpose: 37 rows (not a multiple of any workgroup), 11
// tokens (not a multiple of the token tile), weights split into 3 bindings,
// odd float row lengths, x/y offsets and accumulate.
import { describe, expect, it } from 'vitest';
import { createGather } from '../../src/gpu/gather.ts';
import { createMatmul } from '../../src/gpu/matmul.ts';
import { destroyWeight, uploadTensor } from '../../src/gpu/weights.ts';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { f32Buffer, getTestEngine, memGguf, nmse, paramsBuffer, randomTensor, readF32, rng } from './fixture.ts';

// Row lengths: one not-a-multiple-of-32 float row, 3 chunks for 32-blocks, 2 superblocks for K.
const CASES: { type: GgmlType; cols: number }[] = [
  { type: GgmlType.F32, cols: 67 }, { type: GgmlType.F32, cols: 100 }, { type: GgmlType.F32, cols: 64 },
  { type: GgmlType.F16, cols: 67 }, { type: GgmlType.F16, cols: 64 }, { type: GgmlType.BF16, cols: 45 }, { type: GgmlType.BF16, cols: 64 }, { type: GgmlType.Q4_0, cols: 96 }, { type: GgmlType.Q4_1, cols: 96 }, { type: GgmlType.Q5_0, cols: 96 },
  { type: GgmlType.Q5_1, cols: 96 }, { type: GgmlType.Q8_0, cols: 96 }, { type: GgmlType.IQ4_NL, cols: 96 },
  { type: GgmlType.Q2_K, cols: 512 }, { type: GgmlType.Q3_K, cols: 512 }, { type: GgmlType.Q4_K, cols: 512 },
  { type: GgmlType.Q5_K, cols: 512 }, { type: GgmlType.Q6_K, cols: 512 }, { type: GgmlType.IQ4_XS, cols: 512 },
  { type: GgmlType.MXFP4, cols: 96 },
];
// f32 accumulation in a different order than the f64 reference: ~1e-13 typical.
const NMSE_BUDGET = 1e-9;
const ROWS = 37;
// Formats whose ffn_down the models fuse SwiGLU into (and a float row length that cannot: 67).
const GLU = new Set([GgmlType.F32, GgmlType.F16, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K]);
const NT = 11;


function refMatmul(w: Float32Array, x: Float32Array, rows: number, cols: number, nt: number): Float64Array {
  const y = new Float64Array(nt * rows);
  for (let t = 0; t < nt; t++)
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += w[r * cols + k] * x[t * cols + k];
      y[t * rows + r] = s;
    }
  return y;
}

/** Registers the suite for the given paths (one test file per path so vitest's two workers compile in parallel). */
export function kernelSuite(paths: [string, EngineOptions][]): void {
const report: string[] = [];

for (const [pathName, opts] of paths) {
  const enginePromise = getTestEngine(opts, { optional: opts.backend === 'opengles' });
  describe(`GPU kernels (${pathName})`, async () => {
    const engine = await enginePromise;
    it.skipIf(!engine).each(CASES.map((c) => ({ ...c, name: typeInfo(c.type)!.name })))('$name ×$cols', async ({ type, cols }) => {
      const e = engine!;
      const ti = typeInfo(type)!;
      const seed = type * 1000 + cols;
      const rand = rng(seed);
      const bytes = randomTensor(type, ROWS, cols, rand);
      const wref = dequantize(type, bytes, ROWS * cols);
      const file = memGguf([{ name: 'w', type: ti, dims: [cols, ROWS], data: bytes }]);
      const rb = (cols / ti.blockElems) * ti.blockBytes;
      const w = await uploadTensor(e, file, file.tensors[0], { maxBindingBytes: rb * 14 + 16, chunkBytes: rb * 4 });
      expect(w.parts.map((p) => p.rows)).toEqual([14, 14, 9]);

      const x = new Float32Array(NT * cols).map(() => rand() * 2 - 1);
      const ref = refMatmul(wref, x, ROWS, cols, NT);
      const xb = f32Buffer(e, x);
      const yb = e.createBuffer('activations', 'y', NT * ROWS * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
      const params = paramsBuffer(e, NT);
      const mm = await createMatmul(e, w, { x: xb, y: yb, params, maxTokens: NT });

      // matvec (token 0)
      let enc = e.device.createCommandEncoder();
      let pass = enc.beginComputePass();
      mm.encode(pass, 1);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const y1 = await readF32(e, yb, ROWS * 4);
      const errMv = nmse(y1, ref.subarray(0, ROWS));

      // matmul (all NT tokens)
      enc = e.device.createCommandEncoder();
      pass = enc.beginComputePass();
      mm.encode(pass, NT);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const yn = await readF32(e, yb, NT * ROWS * 4);
      const errMm = nmse(yn, ref);

      // accumulate with offsets: y[2 + r] += W·x[token 1] (x offset = one row)
      const y0 = new Float32Array(ROWS + 2).map(() => rand());
      const yb2 = f32Buffer(e, y0);
      const xOff = cols * 4;
      const acc = await createMatmul(e, w, { x: xb, xOffset: xOff, y: yb2, yOffset: 8, params, maxTokens: 1, accumulate: true });
      enc = e.device.createCommandEncoder();
      pass = enc.beginComputePass();
      acc.encode(pass, 1);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const ya = await readF32(e, yb2, (ROWS + 2) * 4);
      const refAcc = Array.from({ length: ROWS + 2 }, (_, i) => (i < 2 ? y0[i] : y0[i] + ref[ROWS + i - 2]));
      const errAcc = nmse(ya, refAcc);

      // SwiGLU on load (ffn_down in decode, GPU tuning only): x = gate row, up 256-aligned after it.
      let errGlu = 0;
      if (GLU.has(type)) {
        const upOff = Math.ceil((cols * 4) / 256) * 256;
        const gu = new Float32Array(upOff / 4 + cols);
        for (let k = 0; k < cols; k++) { gu[k] = rand() * 8 - 4; gu[upOff / 4 + k] = rand() * 2 - 1; }
        const h = new Float32Array(cols).map((_, k) => (gu[k] / (1 + Math.exp(-gu[k]))) * gu[upOff / 4 + k]);
        const refGlu = refMatmul(wref, h, ROWS, cols, 1);
        const gub = f32Buffer(e, gu);
        const glu = await createMatmul(e, w, { x: gub, y: yb, params, maxTokens: 1, gluUpOffset: upOff });
        expect(glu.gluFused, 'GPU tuning with vec4 x loads fuses SwiGLU').toBe(cols % 4 === 0 && !e.cpuTuning);
        enc = e.device.createCommandEncoder();
        pass = enc.beginComputePass();
        glu.encode(pass, 1);
        pass.end();
        e.device.queue.submit([enc.finish()]);
        if (glu.gluFused) errGlu = nmse(await readF32(e, yb, ROWS * 4), refGlu);
        e.destroyBuffer(gub);
      }

      // RMSNorm on load (decode's products after a norm): y = W·(g ⊙ x[token 1] / rms).
      const gw = new Float32Array(cols).map(() => rand() * 2);
      const x1 = x.subarray(cols, 2 * cols);
      const inv = 1 / Math.sqrt(x1.reduce((a, v) => a + v * v, 0) / cols + 1e-5);
      const refNorm = refMatmul(wref, Float32Array.from(x1, (v, k) => v * inv * gw[k]), ROWS, cols, 1);
      const gwb = f32Buffer(e, gw);
      const nrm = await createMatmul(e, w, { x: xb, xOffset: xOff, y: yb, params, maxTokens: 1, norm: { x: xb, w: gwb, eps: 1e-5 } });
      expect(nrm.normFused, 'vec4 x loads fuse RMSNorm').toBe(cols % 4 === 0);
      enc = e.device.createCommandEncoder();
      pass = enc.beginComputePass();
      nrm.encode(pass, 1);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const errNorm = nrm.normFused ? nmse(await readF32(e, yb, ROWS * 4), refNorm) : 0;
      e.destroyBuffer(gwb);

      // gather: ids hit all three parts, repeats included
      const ids = new Uint32Array([36, 0, 13, 14, 27, 28, 5, 36, 20]);
      const idb = f32Buffer(e, ids);
      const out = e.createBuffer('activations', 'out', ids.length * cols * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      const g = await createGather(e, w, { ids: idb, out, params, maxTokens: ids.length });
      enc = e.device.createCommandEncoder();
      pass = enc.beginComputePass();
      g.encode(pass, ids.length);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const got = await readF32(e, out, ids.length * cols * 4);
      const want = new Float32Array(ids.length * cols);
      ids.forEach((id, t) => {
        want.set(wref.subarray(id * cols, (id + 1) * cols), t * cols);
      });
      const errG = nmse(got, want);
      e.check();

      report.push(`${pathName.padEnd(18)} ${ti.name.padEnd(6)} cols ${String(cols).padStart(3)}: matvec ${errMv.toExponential(1)} matmul ${errMm.toExponential(1)} acc ${errAcc.toExponential(1)} glu ${errGlu.toExponential(1)} norm ${errNorm.toExponential(1)} gather ${errG.toExponential(1)}`);
      expect(errMv, 'matvec NMSE').toBeLessThan(NMSE_BUDGET);
      expect(errMm, 'matmul NMSE').toBeLessThan(NMSE_BUDGET);
      expect(errAcc, 'accumulate NMSE').toBeLessThan(NMSE_BUDGET);
      expect(errGlu, 'SwiGLU-on-load matvec NMSE').toBeLessThan(NMSE_BUDGET);
      expect(errNorm, 'RMSNorm-on-load matvec NMSE').toBeLessThan(NMSE_BUDGET);
      expect(errG, 'gather NMSE').toBeLessThan(1e-12);
      for (const b of [xb, yb, yb2, params, idb, out]) e.destroyBuffer(b);
      destroyWeight(e, w);
    });
  });
}

describe('report', () => {
  it('prints NMSE per format', () => {
    console.log(report.join('\n'));
    expect(report.length).toBeGreaterThanOrEqual(0);
  });
});
}
