// Attention's score options (scale, Gemma 2 softcap, sliding window) against a
// float64 CPU reference, on the three kernel configurations: CPU tuning (the
// subgroup kernel for headDim % 16 == 0, attention.wgsl otherwise), GPU tuning
// (split + merge), and no shader-f16 (f32 KV cache). Shapes are awkward:
// GQA, several tokens at pos > 0, windows that start inside a 4-position step
// of the subgroup kernel, windows smaller than, equal to and larger than the
// sequence, chunks wholly before the window (they must merge as nothing), and
// softcaps small enough that tanh saturates.
import { describe, expect, it } from 'vitest';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { type AttentionOptions, attentionScoreConstants, createAttention } from '../../src/models/kernels.ts';
import { f16ToF32, f32ToF16 } from '../../src/quant/half.ts';
import { maxAbsDiff, paramsBuffer, rand, readF32, runPass, testEngine, upload, zeros } from './gpu-util.ts';
import { refAttention } from './reference-attention.ts';

const CONFIGS: [string, EngineOptions][] = [['cpu tuning', {}], ['gpu tuning', { tuning: 'gpu' }], ['no f16', { noF16: true }]];

interface Case {
  name: string; nHeads: number; nKvHeads: number; headDim: number; pos: number; n: number;
  scale?: number; softcap?: number; window?: number; chunk?: number;
  /** Amplitude of q (large → scores beyond the softcap). */
  qAmp?: number;
  /** gpt-oss's attention sinks: this many times a random logit per head (large: sinks far above the scores). */
  sinkAmp?: number;
}

// Subgroup-eligible cases have headDim 32/64 (unsplit on CPU tuning); headDim 10 and 6 take attention.wgsl.
const CASES: Case[] = [
  // p = 9…15, window 5: the window starts at p-4, mid-step for the subgroup kernel's 4-position steps.
  { name: 'window 5 < sequence', nHeads: 8, nKvHeads: 2, headDim: 64, pos: 9, n: 7, window: 5 },
  { name: 'window 1 (own slot only)', nHeads: 6, nKvHeads: 3, headDim: 32, pos: 3, n: 4, window: 1 },
  { name: 'softcap 1.5, scale 0.3, saturating', nHeads: 8, nKvHeads: 2, headDim: 32, pos: 9, n: 7, softcap: 1.5, scale: 0.3, qAmp: 4 },
  { name: 'softcap + window + scale, headDim 10', nHeads: 6, nKvHeads: 2, headDim: 10, pos: 4, n: 3, softcap: 0.8, window: 3, scale: 0.25, qAmp: 3 },
  // Split in every configuration: chunks of 5 over p = 37, 38 with window 7: chunks 0…5 lie wholly before it.
  { name: 'split, chunks before the window, softcap', nHeads: 8, nKvHeads: 1, headDim: 6, pos: 37, n: 2, chunk: 5, window: 7, softcap: 1, qAmp: 3 },
  { name: 'split, window 9 across chunks of 4, headDim 32', nHeads: 4, nKvHeads: 2, headDim: 32, pos: 20, n: 5, chunk: 4, window: 9 },
  // gpt-oss: sinks on each path (subgroup on CPU tuning, attention.wgsl, split + merge), with its window on even layers.
  { name: 'sinks', nHeads: 8, nKvHeads: 2, headDim: 64, pos: 9, n: 7, sinkAmp: 3 },
  { name: 'sinks + window 4, headDim 10', nHeads: 6, nKvHeads: 3, headDim: 10, pos: 6, n: 3, window: 4, sinkAmp: 3 },
  { name: 'sinks, split in chunks of 4 + window 6', nHeads: 4, nKvHeads: 2, headDim: 32, pos: 17, n: 4, chunk: 4, window: 6, sinkAmp: 3 },
  // Sinks up to 120 above the scores: e^sink overflows f32, and the outputs must vanish (no NaN).
  { name: 'sinks far above the scores', nHeads: 4, nKvHeads: 4, headDim: 32, pos: 5, n: 2, sinkAmp: 120 },
  { name: 'sinks far above, split', nHeads: 4, nKvHeads: 2, headDim: 10, pos: 9, n: 2, chunk: 4, sinkAmp: 120 },
];
const sinksOf = (c: Case) => (c.sinkAmp ? rand(c.nHeads, 500 + c.pos, c.sinkAmp) : undefined);

/** Cache words as the GPU stores them: f16 pairs packed into u32, or f32 bits. */
function packCache(vals: Float32Array, f16: boolean): Uint32Array {
  if (!f16) return new Uint32Array(vals.buffer.slice(0));
  const out = new Uint32Array(vals.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = f32ToF16(vals[2 * i]) | (f32ToF16(vals[2 * i + 1]) << 16);
  return out;
}
const roundF16 = (a: Float32Array) => Float32Array.from(a, (v) => f16ToF32(f32ToF16(v)));

describe('attentionScoreConstants', () => {
  it('defaults to 1/sqrt(headDim), no softcap, no window; rejects bad values', () => {
    expect(attentionScoreConstants({ headDim: 64 })).toEqual({ SCALE: 0.125, SOFTCAP: 0, WINDOW: 0 });
    expect(attentionScoreConstants({ headDim: 64, scale: 0.2, softcap: 50, window: 4096 })).toEqual({ SCALE: 0.2, SOFTCAP: 50, WINDOW: 4096 });
    expect(() => attentionScoreConstants({ headDim: 64, softcap: -1 })).toThrow(/softcap/);
    expect(() => attentionScoreConstants({ headDim: 64, window: 2.5 })).toThrow(/window/);
    expect(() => attentionScoreConstants({ headDim: 64, scale: Number.NaN })).toThrow(/scale/);
  });
});

for (const [config, opts] of CONFIGS) {
  const engine = await testEngine(opts);
  describe.skipIf(!engine)(`attention options (${config})`, () => {
    const e = engine!;
    const kvF16 = e.f16; // as the models choose it

    async function run(c: Case, q: Float32Array, k: Float32Array, v: Float32Array, extra: Partial<AttentionOptions> = {}) {
      const ctx = c.pos + c.n + 3, qd = c.nHeads * c.headDim;
      const out = zeros(e, c.n * qd * 4);
      const params = paramsBuffer(e, c.n, 0);
      const sinks = sinksOf(c);
      const kern = await createAttention(e, {
        ...(sinks ? { sinks: upload(e, sinks) } : {}),
        params, q: upload(e, q), kCache: upload(e, packCache(k, kvF16)), vCache: upload(e, packCache(v, kvF16)),
        out, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16, maxTokens: c.n, contextLength: ctx,
        split: c.chunk !== undefined ? true : undefined, chunk: c.chunk, scale: c.scale, softcap: c.softcap, window: c.window, ...extra,
      });
      // A first step at pos 0 fills the split partials with real records, laid out for fewer
      // chunks, so a chunk the step at pos skips must still overwrite its record with a neutral one.
      await runPass(e, (p) => kern.encode(p, c.n, 0));
      e.device.queue.writeBuffer(params, 0, new Uint32Array([c.n, c.pos, 0, 0]));
      await runPass(e, (p) => kern.encode(p, c.n, c.pos));
      return { label: kern.label, got: await readF32(e, out, c.n * qd) };
    }

    it.each(CASES)('$name: $nHeads/$nKvHeads heads, headDim $headDim, pos $pos, $n tokens', async (c) => {
      const ctx = c.pos + c.n + 3, qd = c.nHeads * c.headDim, kvd = c.nKvHeads * c.headDim;
      const seed = c.headDim * 100 + c.pos + (c.window ?? 0);
      const q = rand(c.n * qd, seed, c.qAmp ?? 2);
      let k = rand(ctx * kvd, seed + 1, 2), v = rand(ctx * kvd, seed + 2);
      if (kvF16) { k = roundF16(k); v = roundF16(v); }
      const { label, got } = await run(c, q, k, v);

      // The path this configuration is meant to exercise.
      const a = e.adapter;
      const subgroup = e.cpuTuning && e.subgroups && a.subgroupMinSize === 8 && a.subgroupMaxSize === 8 && c.chunk === undefined && c.headDim % 16 === 0;
      expect(label).toBe(subgroup ? 'attention_subgroup' : 'attention');

      const sinks = sinksOf(c);
      const want = refAttention(q, k, v, { ...c, sinks });
      expect(maxAbsDiff(got, want.out)).toBeLessThan(1e-5);
      // The options matter for this data: plain causal attention differs.
      const plain = refAttention(q, k, v, { ...c, scale: undefined, softcap: 0, window: 0 });
      if (sinks) expect(maxAbsDiff(want.out, refAttention(q, k, v, c).out), 'the sinks matter').toBeGreaterThan(1e-2);
      expect(maxAbsDiff(want.out, plain.out)).toBeGreaterThan(1e-2);
      if (c.softcap) expect(want.maxRatio, 'some scores saturate tanh').toBeGreaterThan(2);
    });

    // A window covering every position changes nothing: the same loops from slot 0, bit for bit.
    it.each([
      { name: 'subgroup-eligible', nHeads: 6, nKvHeads: 3, headDim: 32, pos: 0, n: 6 },
      { name: 'headDim 10', nHeads: 4, nKvHeads: 2, headDim: 10, pos: 5, n: 3 },
      { name: 'split chunks of 3', nHeads: 4, nKvHeads: 2, headDim: 10, pos: 5, n: 3, chunk: 3 },
    ] as Case[])('window ≥ sequence equals no window bit for bit ($name)', async (c) => {
      const ctx = c.pos + c.n + 3, qd = c.nHeads * c.headDim, kvd = c.nKvHeads * c.headDim;
      const q = rand(c.n * qd, 71, 2);
      let k = rand(ctx * kvd, 72, 2), v = rand(ctx * kvd, 73);
      if (kvF16) { k = roundF16(k); v = roundF16(v); }
      const none = await run(c, q, k, v);
      for (const window of [c.pos + c.n, 1000]) {
        const w = await run(c, q, k, v, { window });
        expect(Array.from(w.got)).toEqual(Array.from(none.got));
      }
      expect(maxAbsDiff(none.got, refAttention(q, k, v, c).out)).toBeLessThan(1e-5);
    });
  });
}
