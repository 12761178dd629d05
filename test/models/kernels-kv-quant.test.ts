// The block-type KV caches (q8_0, q4_0; src/models/kv-cache.ts) on the three
// kernel configurations (CPU tuning, GPU tuning, no shader-f16): the store
// (rope_kv_quant.wgsl) writes ggml's bytes and attention reads them as ggml
// dequantizes them. Per shape, tokens 0..pos-1 are stored by one dispatch
// and pos..pos+n-1 by a second, into caches first filled with random words;
// then
// - q is rotated bit for bit as the f32 rope kernel rotates it;
// - every written block is byte for byte the TS codec's (ggml's _ref
//   rounding) of the f32 kernel's k and v, and everything else in the
//   buffers (later slots, the other half of a shared scale word) is untouched;
// - attention over the caches matches the float64 reference on the codec's
//   dequantized values, and differs from attention on unquantized values by
//   more than that tolerance.
// Shapes: GQA, kvDim 32 (one block a row: two tokens share each scale word),
// headDim 48 (blocks span heads, 3 a row), a single token, split chunks with
// a window, partial RoPE. Some values are exact roundf ties (x·id = k + ½:
// ggml rounds away from zero, WGSL's round() to even), a zero block, and a
// q4_0 block whose largest magnitude comes twice with both signs (the first wins).
import { describe, expect, it } from 'vitest';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { createAttention, createRopeKv, ropeTable } from '../../src/models/kernels.ts';
import { checkKvType, dequantizeKv, gpuToBlocks, type KvType, kvBufferBytes, quantizeKv } from '../../src/models/kv-cache.ts';
import { UsageError } from '../../src/errors.ts';
import { maxAbsDiff, paramsBuffer, rand, readF32, readback, runPass, testEngine, upload, zeros } from './gpu-util.ts';
import { refAttention } from './reference-attention.ts';

const CONFIGS: [string, EngineOptions][] = [['cpu tuning', {}], ['gpu tuning', { tuning: 'gpu' }], ['no f16', { noF16: true }]];

interface Shape { name: string; nHeads: number; nKvHeads: number; headDim: number; ropeDim: number; pos: number; n: number; chunk?: number; window?: number }
const SHAPES: Shape[] = [
  { name: 'GQA 8/2, headDim 64', nHeads: 8, nKvHeads: 2, headDim: 64, ropeDim: 64, pos: 37, n: 5 },
  { name: 'kvDim 32 (one block a row), headDim 8', nHeads: 8, nKvHeads: 4, headDim: 8, ropeDim: 8, pos: 13, n: 3 },
  { name: 'headDim 48 (blocks span heads), partial RoPE', nHeads: 6, nKvHeads: 2, headDim: 48, ropeDim: 32, pos: 9, n: 4 },
  { name: 'GQA 6/3, headDim 32, one token', nHeads: 6, nKvHeads: 3, headDim: 32, ropeDim: 32, pos: 22, n: 1 },
  { name: 'split (chunks of 7), window 11', nHeads: 4, nKvHeads: 1, headDim: 32, ropeDim: 16, pos: 30, n: 6, chunk: 7, window: 11 },
];

/** q|k|v of `tokens` tokens in one buffer (k, v at offsets that are not 256-aligned), and the offsets in floats. */
function qkvData(q: Float32Array, k: Float32Array, v: Float32Array) {
  const kOff = q.length + 6, vOff = kOff + k.length + 2;
  const all = new Float32Array(vOff + v.length);
  all.set(q);
  all.set(k, kOff);
  all.set(v, vOff);
  return { all, kOff, vOff };
}

/** V values that test the rounding: roundf ties (d = 2^-6 exactly, so x·id = k + ½), a zero block, and for q4_0 ±max twice. */
function special(v: Float32Array, kvd: number, n: number): void {
  if (n > 0) v.set([127 / 64, 2.5 / 64, -3.5 / 64, 0.5 / 64, -0.5 / 64, 1.5 / 64, -126.5 / 64], 0);
  if (n > 1) v.fill(0, kvd, kvd + 32);
  if (n > 2) {
    for (let i = 0; i < 32; i++) v[2 * kvd + i] *= 0.5;
    v[2 * kvd + 3] = -1.5;
    v[2 * kvd + 20] = 1.5;
  }
}

describe('checkKvType', () => {
  it('block types need whole blocks in a token row (nKvHeads × headDim); f16/f32 take any', () => {
    expect(() => checkKvType('q8_0', { nKvHeads: 4, headDim: 8 })).not.toThrow(); // 32 = one block
    expect(() => checkKvType('q4_0', { nKvHeads: 2, headDim: 48 })).not.toThrow();
    expect(() => checkKvType('f16', { nKvHeads: 3, headDim: 10 })).not.toThrow();
    expect(() => checkKvType('q8_0', { nKvHeads: 3, headDim: 10 })).toThrow(UsageError);
    expect(() => checkKvType('q4_0', { nKvHeads: 3, headDim: 10 })).toThrow(/^KV cache type q4_0 stores each token's keys and values in blocks of 32, but this model's rows are 3 KV heads × head size 10 = 30 values: use --kv-type f16/);
  });
});

for (const [config, opts] of CONFIGS) {
  const engine = await testEngine(opts);
  describe.skipIf(!engine)(`block-type KV cache: store and attention (${config})`, () => {
    const e = engine!;
    const cases = (['q8_0', 'q4_0'] as KvType[]).flatMap((kvType) => SHAPES.map((s) => ({ kvType, ...s })));

    it.each(cases)('$kvType, $name: $nHeads/$nKvHeads heads, headDim $headDim, pos $pos, $n tokens', async (c) => {
      const { nHeads, nKvHeads, headDim, ropeDim, pos, n, kvType } = c;
      const ctx = pos + n + 3, qd = nHeads * headDim, kvd = nKvHeads * headDim, written = pos + n;
      const seed = headDim * 1000 + pos * 10 + (kvType === 'q4_0' ? 1 : 0);
      const table = upload(e, ropeTable(ctx, ropeDim, 10000, 1));
      const bytes = kvBufferBytes(kvType, ctx, kvd);
      const garbage = [0, 1].map((i) => new Uint32Array(Math.ceil(bytes / 4)).map((_, j) => (Math.imul(j + 1, 2654435761) ^ (seed + i * 7919)) >>> 0));
      const kq = upload(e, garbage[0]), vq = upload(e, garbage[1]);
      const kf = zeros(e, ctx * kvd * 4), vf = zeros(e, ctx * kvd * 4);
      // Two dispatches: tokens 0..pos-1 at 0, then pos..pos+n-1 at pos; each runs on the block type and on f32.
      let lastQ: GPUBuffer | undefined, lastQf: GPUBuffer | undefined;
      for (const [first, count, s] of [[0, pos, seed + 1], [pos, n, seed + 5]] as const) {
        const v = rand(count * kvd, s + 2, 1.5);
        special(v, kvd, first === 0 ? count : 0);
        const d = qkvData(rand(count * qd, s, 2), rand(count * kvd, s + 1, 2), v);
        const qkvQ = upload(e, d.all), qkvF = upload(e, d.all);
        const params = paramsBuffer(e, count, first);
        const shape = { nHeads, nKvHeads, headDim, ropeDim, params, kOffset: d.kOff * 4, vOffset: d.vOff * 4, table };
        const quant = await createRopeKv(e, { ...shape, qkv: qkvQ, kCache: kq, vCache: vq, kvF16: false, kvType, contextLength: ctx });
        const plain = await createRopeKv(e, { ...shape, qkv: qkvF, kCache: kf, vCache: vf, kvF16: false });
        expect(quant.label).toBe('rope_kv_quant');
        await runPass(e, (p) => {
          quant.encode(p, count);
          plain.encode(p, count);
        });
        lastQ = qkvQ;
        lastQf = qkvF;
      }
      const q = await readF32(e, lastQ!, n * qd);
      expect(Array.from(q)).toEqual(Array.from(await readF32(e, lastQf!, n * qd)));

      // The bytes: the codec's blocks of the f32 kernel's k and v for the written slots, the random words elsewhere.
      const kF32 = await readF32(e, kf, written * kvd), vF32 = await readF32(e, vf, written * kvd);
      const nb = kvd / 32;
      const values: Float32Array[] = [];
      for (const [buf, f32, g] of [[kq, kF32, garbage[0]], [vq, vF32, garbage[1]]] as const) {
        const got = gpuToBlocks(kvType, new Uint32Array(await readback(e, buf, garbage[0].byteLength)), ctx, kvd);
        const want = quantizeKv(kvType, f32, kvd);
        expect(Buffer.from(got.subarray(0, want.length)).equals(Buffer.from(want)), 'written blocks = ggml codec bytes').toBe(true);
        const before = gpuToBlocks(kvType, g, ctx, kvd);
        expect(Buffer.from(got.subarray(want.length)).equals(Buffer.from(before.subarray(want.length))), 'later slots untouched').toBe(true);
        expect(got.length).toBe(ctx * nb * (kvType === 'q8_0' ? 34 : 18));
        values.push(dequantizeKv(kvType, want, written * kvd));
      }
      // The tie values went through ggml's roundf (q8_0: 2.5 → 3, -3.5 → -4, 0.5 → 1, -0.5 → -1 at d = 2^-6).
      if (kvType === 'q8_0') expect(Array.from(values[1].subarray(0, 7)).map((x) => x * 64)).toEqual([127, 3, -4, 1, -1, 2, -127]);

      const out = zeros(e, n * qd * 4);
      const att = await createAttention(e, {
        params: paramsBuffer(e, n, pos), q: { buffer: lastQ!, offset: 0, size: n * qd * 4 }, kCache: kq, vCache: vq, out,
        nHeads, nKvHeads, headDim, kvF16: false, kvType, maxTokens: n, contextLength: ctx,
        split: c.chunk !== undefined ? true : undefined, chunk: c.chunk, window: c.window,
      });
      await runPass(e, (p) => att.encode(p, n, pos));
      const got = await readF32(e, out, n * qd);
      const a = e.adapter;
      const subgroup = e.cpuTuning && e.subgroups && a.subgroupMinSize === 8 && a.subgroupMaxSize === 8 && c.chunk === undefined && headDim % 16 === 0;
      expect(att.label).toBe(subgroup ? 'attention_subgroup' : 'attention');
      const shape = { nHeads, nKvHeads, headDim, pos, n, window: c.window };
      const want = refAttention(q, values[0], values[1], shape).out;
      expect(maxAbsDiff(got, want)).toBeLessThan(2e-5);
      // The quantization shows: unquantized values give a different result.
      expect(maxAbsDiff(got, refAttention(q, kF32, vF32, shape).out)).toBeGreaterThan(1e-4);
    });
  });
}
