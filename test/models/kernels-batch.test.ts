// The batched-decode kernels (several sequences in one step, src/models/llama-batch.ts)
// on the three kernel configurations (CPU tuning, GPU tuning, no shader-f16):
// - attention with a per-token (position, first cache slot) table: every token
//   reads its own sequence's region of the cache up to its own position,
//   against the float64 reference on that region alone. Sequences of different
//   lengths (one at position 0), tokens not in sequence order, a sequence left
//   out, GQA, headDim 10 (attention.wgsl) and 32/64 (the subgroup kernel on
//   lavapipe), a window, a softcap, and the block types q8_0/q4_0;
// - attention of one sequence whose region starts at slot `base` > 0 (the
//   ordinary prefill/decode path of sequence s), split and not;
// - the RoPE + KV store with the table writes exactly what the one-sequence
//   store writes token by token (q, and every cache word), f16/f32 and q8_0/q4_0;
// - argmax of every row (lowest index on ties).
import { describe, expect, it } from 'vitest';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { createArgmax, createAttention, createRopeKv, ropeTable } from '../../src/models/kernels.ts';
import { dequantizeKv, type KvType, kvBufferBytes, kvDBase, quantizeKv } from '../../src/models/kv-cache.ts';
import { f16ToF32, f32ToF16 } from '../../src/quant/half.ts';
import { maxAbsDiff, paramsBuffer, rand, readF32, readback, runPass, testEngine, upload, zeros } from './gpu-util.ts';
import { refAttention } from './reference-attention.ts';

const CONFIGS: [string, EngineOptions][] = [['cpu tuning', {}], ['gpu tuning', { tuning: 'gpu' }], ['no f16', { noF16: true }]];

interface Case {
  name: string; nHeads: number; nKvHeads: number; headDim: number;
  /** Slots per sequence, sequences. */
  ctx: number; nSeq: number;
  /** The step's tokens: (sequence, position). */
  tokens: [number, number][];
  window?: number; softcap?: number; kvType?: KvType;
}

const CASES: Case[] = [
  { name: 'subgroup-eligible, GQA 8/2', nHeads: 8, nKvHeads: 2, headDim: 64, ctx: 20, nSeq: 3, tokens: [[2, 17], [0, 0], [1, 6]] },
  { name: 'headDim 10, a sequence left out', nHeads: 6, nKvHeads: 2, headDim: 10, ctx: 9, nSeq: 5, tokens: [[3, 8], [1, 2], [0, 5], [4, 0]] },
  { name: 'headDim 32, window 5, softcap', nHeads: 6, nKvHeads: 3, headDim: 32, ctx: 23, nSeq: 2, tokens: [[1, 22], [0, 3]], window: 5, softcap: 1.2 },
  { name: 'q8_0, headDim 48 (blocks span heads)', nHeads: 6, nKvHeads: 2, headDim: 48, ctx: 13, nSeq: 3, tokens: [[0, 12], [2, 1], [1, 7]], kvType: 'q8_0' },
  { name: 'q4_0, GQA 8/2 headDim 64', nHeads: 8, nKvHeads: 2, headDim: 64, ctx: 11, nSeq: 4, tokens: [[3, 4], [1, 10], [2, 0]], kvType: 'q4_0' },
];

const roundF16 = (a: Float32Array) => Float32Array.from(a, (v) => f16ToF32(f32ToF16(v)));

/** Cache words as the GPU stores them: f16 pairs packed into u32, or f32 bits. */
function packCache(vals: Float32Array, f16: boolean): Uint32Array {
  if (!f16) return new Uint32Array(vals.buffer.slice(0));
  const out = new Uint32Array(vals.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = f32ToF16(vals[2 * i]) | (f32ToF16(vals[2 * i + 1]) << 16);
  return out;
}

/** ggml blocks (GGUF order) → the GPU layout of kv-cache.ts: all bodies, then the d plane. */
function blocksToGpu(t: KvType, blocks: Uint8Array, slots: number, kvDim: number): Uint32Array {
  const blockBytes = t === 'q8_0' ? 34 : 18, body = blockBytes - 2, nBlocks = (slots * kvDim) / 32;
  const out = new Uint8Array(Math.ceil(kvBufferBytes(t, slots, kvDim) / 4) * 4);
  const dBase = kvDBase(t, slots, kvDim) * 4;
  for (let b = 0; b < nBlocks; b++) {
    out.set(blocks.subarray(b * blockBytes + 2, (b + 1) * blockBytes), b * body);
    out[dBase + 2 * b] = blocks[b * blockBytes];
    out[dBase + 2 * b + 1] = blocks[b * blockBytes + 1];
  }
  return new Uint32Array(out.buffer);
}

/** A cache of `slots` random rows as the kernels read it, and the values they see. */
function cache(slots: number, kvd: number, seed: number, kvType: KvType): { words: Uint32Array; values: Float32Array } {
  const raw = rand(slots * kvd, seed, 2);
  if (kvType === 'q8_0' || kvType === 'q4_0') {
    const blocks = quantizeKv(kvType, raw, kvd);
    return { words: blocksToGpu(kvType, blocks, slots, kvd), values: dequantizeKv(kvType, blocks, slots * kvd) };
  }
  const values = kvType === 'f16' ? roundF16(raw) : raw;
  return { words: packCache(values, kvType === 'f16'), values };
}

for (const [config, opts] of CONFIGS) {
  const engine = await testEngine(opts);
  describe.skipIf(!engine)(`batched decode kernels (${config})`, () => {
    const e = engine!;
    const plainKv: KvType = e.f16 ? 'f16' : 'f32';
    const subgroupOk = (headDim: number) => e.cpuTuning && e.subgroups && e.adapter.subgroupMinSize === 8 && e.adapter.subgroupMaxSize === 8 && headDim % 16 === 0;

    it.each(CASES)('attention per sequence: $name', async (c) => {
      const kvType = c.kvType ?? plainKv;
      const qd = c.nHeads * c.headDim, kvd = c.nKvHeads * c.headDim, slots = c.ctx * c.nSeq, n = c.tokens.length;
      const seed = c.headDim * 31 + c.ctx;
      const k = cache(slots, kvd, seed + 1, kvType), v = cache(slots, kvd, seed + 2, kvType);
      const q = rand(n * qd, seed, 2);
      const seqs = upload(e, Uint32Array.from(c.tokens.flatMap(([s, p]) => [p, s * c.ctx])));
      const out = zeros(e, n * qd * 4);
      const att = await createAttention(e, {
        params: paramsBuffer(e, n, 0), q: upload(e, q), kCache: upload(e, k.words), vCache: upload(e, v.words), out,
        nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: kvType === 'f16', kvType, maxTokens: n, contextLength: c.ctx, kvSlots: slots,
        window: c.window, softcap: c.softcap, seqs,
      });
      expect(att.label).toBe(subgroupOk(c.headDim) ? 'attention_subgroup' : 'attention');
      await runPass(e, (p) => att.encode(p, n, 0));
      const got = await readF32(e, out, n * qd);
      for (const [t, [s, pos]] of c.tokens.entries()) {
        const region = (x: Float32Array) => x.subarray(s * c.ctx * kvd, (s + 1) * c.ctx * kvd);
        const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, pos, n: 1, window: c.window, softcap: c.softcap };
        const want = refAttention(q.subarray(t * qd, (t + 1) * qd), region(k.values), region(v.values), shape).out;
        const row = got.subarray(t * qd, (t + 1) * qd);
        expect(maxAbsDiff(row, want), `token ${t} (sequence ${s}, position ${pos})`).toBeLessThan(2e-5);
        // Another sequence's region gives another answer: the offset matters for this data.
        const other = (s + 1) % c.nSeq;
        const wrong = refAttention(q.subarray(t * qd, (t + 1) * qd), k.values.subarray(other * c.ctx * kvd), v.values.subarray(other * c.ctx * kvd), shape).out;
        expect(maxAbsDiff(want, wrong)).toBeGreaterThan(1e-3);
      }
    });

    // The ordinary path of sequence s: params.base = s·ctx, every token of the step in that region.
    it.each([
      { name: 'subgroup-eligible', nHeads: 8, nKvHeads: 2, headDim: 32, chunk: undefined },
      { name: 'headDim 10', nHeads: 6, nKvHeads: 3, headDim: 10, chunk: undefined },
      { name: 'split chunks of 4', nHeads: 4, nKvHeads: 2, headDim: 32, chunk: 4 },
    ])('one sequence at base > 0: $name', async (c) => {
      const ctx = 17, nSeq = 3, s = 2, pos = 9, n = 5;
      const qd = c.nHeads * c.headDim, kvd = c.nKvHeads * c.headDim;
      const k = cache(ctx * nSeq, kvd, 11, plainKv), v = cache(ctx * nSeq, kvd, 12, plainKv);
      const q = rand(n * qd, 13, 2);
      const params = paramsBuffer(e, n, pos);
      e.device.queue.writeBuffer(params, 0, new Uint32Array([n, pos, s * ctx, 0]));
      const out = zeros(e, n * qd * 4);
      const att = await createAttention(e, {
        params, q: upload(e, q), kCache: upload(e, k.words), vCache: upload(e, v.words), out,
        nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: e.f16, maxTokens: n, contextLength: ctx, split: c.chunk ? true : undefined, chunk: c.chunk,
      });
      await runPass(e, (p) => att.encode(p, n, pos));
      const got = await readF32(e, out, n * qd);
      const region = (x: Float32Array) => x.subarray(s * ctx * kvd, (s + 1) * ctx * kvd);
      const want = refAttention(q, region(k.values), region(v.values), { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, pos, n }).out;
      expect(maxAbsDiff(got, want)).toBeLessThan(2e-5);
    });

    it.each([
      { kvType: undefined, nHeads: 8, nKvHeads: 2, headDim: 64, ropeDim: 64 },
      { kvType: 'q8_0' as KvType, nHeads: 6, nKvHeads: 2, headDim: 48, ropeDim: 32 },
      { kvType: 'q4_0' as KvType, nHeads: 8, nKvHeads: 4, headDim: 8, ropeDim: 8 },
    ])('rope + KV store per sequence ($kvType, headDim $headDim) = the one-sequence store token by token', async (c) => {
      const kvType = c.kvType ?? plainKv;
      const ctx = 12, nSeq = 4, slots = ctx * nSeq;
      const tokens: [number, number][] = [[3, 11], [0, 0], [2, 5]];
      const n = tokens.length, qd = c.nHeads * c.headDim, kvd = c.nKvHeads * c.headDim;
      const q = rand(n * qd, 21, 2), k = rand(n * kvd, 22, 2), v = rand(n * kvd, 23, 1.5);
      const kOff = n * qd + 2, vOff = kOff + n * kvd + 4; // in floats, vec2-aligned
      const all = new Float32Array(vOff + n * kvd);
      all.set(q);
      all.set(k, kOff);
      all.set(v, vOff);
      const table = upload(e, ropeTable(ctx, c.ropeDim, 10000, 1));
      const words = Math.ceil(kvBufferBytes(kvType, slots, kvd) / 4);
      const garbage = Uint32Array.from({ length: words }, (_, j) => Math.imul(j + 7, 2654435761) >>> 0);
      const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, ropeDim: c.ropeDim, kvF16: kvType === 'f16', kvType, contextLength: ctx, kvSlots: slots, kOffset: kOff * 4, vOffset: vOff * 4, table };
      // Batched: all tokens in one dispatch.
      const bq = upload(e, all), bk = upload(e, garbage), bv = upload(e, garbage);
      const seqs = upload(e, Uint32Array.from(tokens.flatMap(([s, p]) => [p, s * ctx])));
      const batched = await createRopeKv(e, { ...shape, params: paramsBuffer(e, n, 0), qkv: bq, kCache: bk, vCache: bv, seqs });
      await runPass(e, (p) => batched.encode(p, n));
      // One sequence at a time: token t alone, its q|k|v moved to row 0, at params (1, pos, base).
      const sk = upload(e, garbage), sv = upload(e, garbage);
      const qs: Float32Array[] = [];
      for (const [t, [s, pos]] of tokens.entries()) {
        const one = new Float32Array(all.length);
        one.set(q.subarray(t * qd, (t + 1) * qd));
        one.set(k.subarray(t * kvd, (t + 1) * kvd), kOff);
        one.set(v.subarray(t * kvd, (t + 1) * kvd), vOff);
        const params = paramsBuffer(e, 1, pos);
        e.device.queue.writeBuffer(params, 0, new Uint32Array([1, pos, s * ctx, 0]));
        const buf = upload(e, one);
        const single = await createRopeKv(e, { ...shape, params, qkv: buf, kCache: sk, vCache: sv });
        await runPass(e, (p) => single.encode(p, 1));
        qs.push(await readF32(e, buf, qd));
      }
      const gotQ = await readF32(e, bq, n * qd);
      for (const [t] of tokens.entries()) expect(Array.from(gotQ.subarray(t * qd, (t + 1) * qd))).toEqual(Array.from(qs[t]));
      for (const [a, b] of [[bk, sk], [bv, sv]]) {
        const x = new Uint32Array(await readback(e, a, words * 4)), y = new Uint32Array(await readback(e, b, words * 4));
        expect(Buffer.from(x.buffer).equals(Buffer.from(y.buffer))).toBe(true);
        expect(Buffer.from(x.buffer).equals(Buffer.from(garbage.buffer)), 'the store wrote something').toBe(false);
      }
    });

    it('argmax of every row, lowest index on ties', async () => {
      const rows = 5, n = 1000;
      const x = rand(rows * n, 5, 3);
      x[2 * n + 17] = 9;
      x[2 * n + 400] = 9; // a tie: 17 wins
      x[4 * n + n - 1] = 8; // the last column
      const out = zeros(e, rows * 4);
      const k = await createArgmax(e, { params: paramsBuffer(e, rows, 0), x: upload(e, x), out, n, rows: true });
      await runPass(e, (p) => k.encode(p, rows));
      const got = Array.from(new Uint32Array(await readback(e, out, rows * 4)));
      const want = Array.from({ length: rows }, (_, r) => {
        let best = 0;
        for (let i = 1; i < n; i++) if (x[r * n + i] > x[r * n + best]) best = i;
        return best;
      });
      expect(want[2]).toBe(17);
      expect(want[4]).toBe(n - 1);
      expect(got).toEqual(want);
    });
  });
}
