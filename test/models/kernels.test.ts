// Each model kernel against a float64 CPU reference on fresh random data with
// awkward shapes (odd widths, GQA, partial rope, several tokens at pos > 0).
import { describe, expect, it } from 'vitest';
import { createArgmax, createAttention, createRmsnorm, createRopeKv, createSwiglu, ropeTable } from '../../src/models/kernels.ts';
import { f16ToF32, f32ToF16 } from '../../src/quant/half.ts';
import { maxAbsDiff, paramsBuffer, rand, readF32, readback, runPass, testEngine, upload, zeros } from './gpu-util.ts';
import { rmsnorm, rope, silu } from './reference.ts';

const engine = await testEngine();

/** Cache words as the GPU stores them: f16 pairs packed into u32, or f32 bits. */
function packCache(vals: Float32Array, f16: boolean): Uint32Array {
  if (!f16) return new Uint32Array(vals.buffer.slice(0));
  const out = new Uint32Array(vals.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = f32ToF16(vals[2 * i]) | (f32ToF16(vals[2 * i + 1]) << 16);
  return out;
}
function unpackCache(words: Uint32Array, f16: boolean): Float32Array {
  if (!f16) return new Float32Array(words.buffer);
  const out = new Float32Array(words.length * 2);
  for (let i = 0; i < words.length; i++) {
    out[2 * i] = f16ToF32(words[i] & 0xffff);
    out[2 * i + 1] = f16ToF32(words[i] >>> 16);
  }
  return out;
}
const roundF16Array = (a: Float32Array) => unpackCache(packCache(a, true), true);

describe.skipIf(!engine)('model kernels vs CPU', () => {
  const e = engine!;

  it.each([[67, 3], [300, 2], [8, 5]])('rmsnorm dim %i × %i tokens', async (dim, n) => {
    const x = rand(dim * n, dim + n, 3), w = rand(dim, 7);
    const y = zeros(e, x.byteLength);
    const k = await createRmsnorm(e, { params: paramsBuffer(e, n, 0), x: upload(e, x), w: upload(e, w), y, dim, eps: 1e-5 });
    await runPass(e, (p) => k.encode(p, n));
    const got = await readF32(e, y, dim * n);
    for (let t = 0; t < n; t++) {
      const want = rmsnorm(Float64Array.from(x.subarray(t * dim, (t + 1) * dim)), w, 1e-5);
      expect(maxAbsDiff(got.subarray(t * dim, (t + 1) * dim), want)).toBeLessThan(1e-5);
    }
  });

  it.each([false, true])('rope + kv store (kv f16 %s), GQA 6/3 heads, headDim 10, ropeDim 6, linear ×2, rope_freqs', async (kvF16) => {
    const nHeads = 6, nKvHeads = 3, headDim = 10, ropeDim = 6, ctx = 12, pos = 5, n = 3, base = 5000, factor = 2;
    const ff = Float32Array.of(1, 2.5, 8);
    const qd = nHeads * headDim, kvd = nKvHeads * headDim;
    const q = rand(n * qd, 11), k = rand(n * kvd, 12), v = rand(n * kvd, 13);
    // q, k, v in one buffer as the model lays them out, at offsets that are not 256-aligned.
    const kOff = q.length + 6, vOff = kOff + k.length + 2;
    const all = new Float32Array(vOff + v.length);
    all.set(q);
    all.set(k, kOff);
    all.set(v, vOff);
    const qb = upload(e, all), kc = zeros(e, (ctx * kvd * (kvF16 ? 2 : 4))), vc = zeros(e, ctx * kvd * (kvF16 ? 2 : 4));
    const kern = await createRopeKv(e, {
      params: paramsBuffer(e, n, pos), qkv: qb, kOffset: kOff * 4, vOffset: vOff * 4, table: upload(e, ropeTable(ctx, ropeDim, base, factor, ff)),
      kCache: kc, vCache: vc, nHeads, nKvHeads, headDim, ropeDim, kvF16,
    });
    await runPass(e, (p) => kern.encode(p, n));
    const gotQ = await readF32(e, qb, n * qd);
    const gotK = unpackCache(new Uint32Array(await readback(e, kc, (ctx * kvd * (kvF16 ? 2 : 4)))), kvF16);
    const gotV = unpackCache(new Uint32Array(await readback(e, vc, (ctx * kvd * (kvF16 ? 2 : 4)))), kvF16);
    const tol = kvF16 ? 2e-3 : 1e-5;
    for (let t = 0; t < n; t++) {
      const wq = Float64Array.from(q.subarray(t * qd, (t + 1) * qd));
      rope(wq, nHeads, headDim, ropeDim, pos + t, base, factor, ff);
      expect(maxAbsDiff(gotQ.subarray(t * qd, (t + 1) * qd), wq)).toBeLessThan(1e-5);
      const wk = Float64Array.from(k.subarray(t * kvd, (t + 1) * kvd));
      rope(wk, nKvHeads, headDim, ropeDim, pos + t, base, factor, ff);
      const slot = (pos + t) * kvd;
      expect(maxAbsDiff(gotK.subarray(slot, slot + kvd), wk)).toBeLessThan(tol);
      expect(maxAbsDiff(gotV.subarray(slot, slot + kvd), v.subarray(t * kvd, (t + 1) * kvd))).toBeLessThan(tol);
    }
    // Slots outside pos…pos+n-1 stay untouched (zero).
    expect(gotK.subarray(0, pos * kvd).every((x) => x === 0)).toBe(true);
    expect(gotV.subarray((pos + n) * kvd).every((x) => x === 0)).toBe(true);
  });

  // split: undefined = one chunk; a number = chunks of that many positions, merged.
  it.each([
    [false, 6, 2, 10, 4, 3, undefined],
    [true, 6, 2, 10, 4, 3, undefined],
    [false, 4, 4, 64, 0, 5, undefined],
    [true, 8, 1, 6, 37, 1, undefined],
    [false, 6, 2, 10, 4, 3, 3],
    [true, 8, 1, 6, 37, 1, 5],
    [false, 4, 2, 64, 9, 4, 4],
    // headDim % 16 == 0 unsplit: the subgroup kernel on lavapipe (4-position steps, partial last step).
    [true, 8, 2, 64, 40, 3, undefined],
    [false, 6, 3, 32, 5, 6, undefined],
    [true, 32, 4, 64, 70, 1, undefined],
  ])('attention (kv f16 %s) %i heads / %i kv, headDim %i, pos %i, %i tokens, chunk %s', async (kvF16, nHeads, nKvHeads, headDim, pos, n, chunk) => {
    const ctx = pos + n + 3, qd = nHeads * headDim, kvd = nKvHeads * headDim;
    const q = rand(n * qd, 21 + pos, 2);
    let kAll = rand(ctx * kvd, 22 + n, 2), vAll = rand(ctx * kvd, 23);
    if (kvF16) { kAll = roundF16Array(kAll); vAll = roundF16Array(vAll); }
    const out = zeros(e, n * qd * 4);
    const kern = await createAttention(e, {
      params: paramsBuffer(e, n, pos), q: upload(e, q), kCache: upload(e, packCache(kAll, kvF16)), vCache: upload(e, packCache(vAll, kvF16)),
      out, nHeads, nKvHeads, headDim, kvF16, maxTokens: n, contextLength: ctx, split: chunk !== undefined, chunk,
    });
    // On a CPU rasteriser with 8-lane subgroups, unsplit heads of 16k dims must take the subgroup kernel.
    const a = e.adapter;
    if (e.cpuTuning && e.subgroups && a.subgroupMinSize === 8 && a.subgroupMaxSize === 8 && chunk === undefined && headDim % 16 === 0) expect(kern.label).toBe('attention_subgroup');
    else expect(kern.label).toBe('attention');
    await runPass(e, (p) => kern.encode(p, n, pos));
    const got = await readF32(e, out, n * qd);
    const want = new Float64Array(n * qd);
    const group = nHeads / nKvHeads;
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / group);
        const s: number[] = [];
        for (let j = 0; j <= pos + t; j++) {
          let d = 0;
          for (let i = 0; i < headDim; i++) d += q[t * qd + h * headDim + i] * kAll[j * kvd + kvh * headDim + i];
          s.push(d / Math.sqrt(headDim));
        }
        const mx = Math.max(...s);
        const ex = s.map((x) => Math.exp(x - mx));
        const sum = ex.reduce((a, b) => a + b, 0);
        for (let j = 0; j < ex.length; j++) {
          for (let i = 0; i < headDim; i++) want[t * qd + h * headDim + i] += (ex[j] / sum) * vAll[j * kvd + kvh * headDim + i];
        }
      }
    }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
  });

  it('swiglu over 3 × 173', async () => {
    const ffn = 173, n = 3;
    const g = rand(n * ffn, 31, 6), u = rand(n * ffn, 32);
    const gu = new Float32Array(2 * n * ffn + 5);
    gu.set(g);
    gu.set(u, n * ffn + 5);
    const gb = upload(e, gu);
    const k = await createSwiglu(e, { params: paramsBuffer(e, n, 0), gu: gb, upOffset: (n * ffn + 5) * 4, ffnDim: ffn });
    await runPass(e, (p) => k.encode(p, n));
    const got = await readF32(e, gb, n * ffn);
    expect(maxAbsDiff(got, Array.from(g, (x, i) => silu(x) * u[i]))).toBeLessThan(1e-5);
  });

  it.each([1000, 5, 32003])('argmax of the last row, vocab %i, lowest index on ties', async (vocab) => {
    const n = 3;
    const x = rand(n * vocab, vocab, 10);
    const last = (n - 1) * vocab;
    const at = Math.floor(vocab * 0.7);
    x[last + at] = 50;
    x[last + vocab - 1] = 50; // a tie later in the row loses
    x[at] = 99; // a larger value in an earlier row is ignored
    const out = zeros(e, 4);
    const k = await createArgmax(e, { params: paramsBuffer(e, n, 0), x: upload(e, x), out, n: vocab });
    await runPass(e, (p) => k.encode(p, n));
    expect(new Uint32Array(await readback(e, out, 4))[0]).toBe(at);
  });
});
