// RoPE of the float64 reference against hand-computed values and against a
// literal f32 transcription of ggml-cpu's C (rope_yarn, rope_yarn_ramp,
// ggml_rope_cache_init, ggml_rope_yarn_corr_dims).
import { describe, expect, it } from 'vitest';
import { kv } from '../../src/gguf/writer.ts';
import type { RopeParams } from '../../src/models/family.ts';
import { llamaCppRope } from './reference-hparams.ts';
import { applyRope, plainRope, ropeCosSin, yarnCorrDims, yarnRamp } from './reference-rope.ts';
import { rope } from './reference.ts';
import { tinyModel } from './reference-tiny.ts';

const f = Math.fround;

/** ggml-cpu's cache for one position, in f32 exactly as the C does it (theta *= theta_scale, cosf·mscale). */
function ggmlCache(p: RopeParams, nDims: number, pos: number, ff?: ArrayLike<number>): Float32Array {
  const corr = (beta: number) => f((nDims * f(Math.log(f(p.origContext / f(beta * 2 * f(Math.PI)))))) / f(2 * f(Math.log(p.base))));
  const dims = [Math.max(0, Math.floor(corr(p.betaFast))), Math.min(nDims - 1, Math.ceil(corr(p.betaSlow)))];
  const thetaScale = f(p.base ** f(-2 / nDims));
  const cache = new Float32Array(nDims);
  let theta = f(pos);
  for (let i0 = 0; i0 < nDims; i0 += 2) {
    const extrap = f(theta / (ff ? ff[i0 / 2] : 1));
    const interp = f(p.freqScale * extrap);
    let t = interp;
    let mscale = f(p.attnFactor);
    if (p.extFactor !== 0) {
      const y = f(f((i0 >> 1) - dims[0]) / Math.max(0.001, f(dims[1] - dims[0])));
      const mix = f(f(1 - Math.min(1, Math.max(0, y))) * p.extFactor);
      t = f(f(interp * f(1 - mix)) + f(extrap * mix));
      mscale = f(mscale * f(1 + f(0.1 * f(Math.log(f(1 / p.freqScale))))));
    }
    cache[i0] = f(f(Math.cos(t)) * mscale);
    cache[i0 + 1] = f(f(Math.sin(t)) * mscale);
    theta = f(theta * thetaScale);
  }
  return cache;
}

function expectCacheMatches(p: RopeParams, nDims: number, pos: number, ff?: ArrayLike<number>) {
  const want = ggmlCache(p, nDims, pos, ff);
  const got = ropeCosSin(p, nDims, pos, ff);
  for (let i = 0; i < nDims / 2; i++) {
    expect(got.cos[i]).toBeCloseTo(want[2 * i], 5);
    expect(got.sin[i]).toBeCloseTo(want[2 * i + 1], 5);
  }
}

describe('reference RoPE', () => {
  it('NORM rotates adjacent pairs, NEOX pairs i and i + n/2, with the same angle per pair', () => {
    // headDim 4, pos 1, base 10000: pair 0 turns by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
    const cs = ropeCosSin(plainRope(10000), 4, 1);
    const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
    const norm = Float64Array.of(1, 2, 3, 4);
    applyRope(norm, 1, 4, 4, 'norm', cs);
    expectClose(norm, [1 * c0 - 2 * s0, 1 * s0 + 2 * c0, 3 * c1 - 4 * s1, 3 * s1 + 4 * c1]);
    const neox = Float64Array.of(1, 2, 3, 4);
    applyRope(neox, 1, 4, 4, 'neox', cs);
    expectClose(neox, [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 1 * s0 + 3 * c0, 2 * s1 + 4 * c1]);
  });

  it('partial rotary leaves dims ≥ ropeDim alone, per head', () => {
    // 2 heads of 4, ropeDim 2: only (x0, x1) of each head turn (by pos·1 rad in both modes).
    for (const mode of ['norm', 'neox'] as const) {
      const x = Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8);
      applyRope(x, 2, 4, 2, mode, ropeCosSin(plainRope(10000), 2, 3));
      const [c, s] = [Math.cos(3), Math.sin(3)];
      expect(x[0]).toBeCloseTo(1 * c - 2 * s, 12);
      expect(x[5]).toBeCloseTo(5 * s + 6 * c, 12);
      expect([x[2], x[3], x[6], x[7]]).toEqual([3, 4, 7, 8]);
    }
  });

  it('linear scaling divides the angle; freq factors divide each pair; attn_factor scales cos and sin', () => {
    const ff = [1, 4];
    const cs = ropeCosSin({ ...plainRope(100, 0.25), attnFactor: 1.5 }, 4, 8, ff);
    // pair 0: 8·1/4 = 2 rad; pair 1: 8·100^(-1/2)/4/4 = 0.05 rad.
    expect(cs.cos[0]).toBeCloseTo(1.5 * Math.cos(2), 12);
    expect(cs.sin[1]).toBeCloseTo(1.5 * Math.sin(0.05), 12);
    // The old Llama-only helper is the NORM rope with freqScale = 1/linear.
    const a = Float64Array.of(0.3, -1, 2, 0.5), b = a.slice();
    rope(a, 1, 4, 4, 8, 100, 4, Float32Array.from(ff));
    applyRope(b, 1, 4, 4, 'norm', ropeCosSin({ ...plainRope(100, 0.25) }, 4, 8, ff));
    expect([...a]).toEqual([...b]);
  });

  it('YaRN correction dims and ramp follow ggml_rope_yarn_corr_dims', () => {
    // 64·ln(4096/(32·2π)) / (2·ln 10000) = 10.47 → floor 10; with beta 1: 22.51 → ceil 23.
    expect(yarnCorrDims(64, 4096, 10000, 32, 1)).toEqual([10, 23]);
    expect(yarnCorrDims(16, 4096, 10000, 32, 1)).toEqual([2, 6]);
    // Clamped to [0, nDims − 1].
    expect(yarnCorrDims(8, 16, 10000, 32, 1)).toEqual([0, 1]);
    expect(yarnCorrDims(8, 1e12, 10, 32, 1)).toEqual([38, 7]);
    // The ramp: 1 (extrapolate) below low, 0 (interpolate) from high on, linear between, by pair index i0/2.
    expect([0, 2, 4, 6, 8, 12, 14].map((i0) => yarnRamp(2, 6, i0))).toEqual([1, 1, 1, 0.75, 0.5, 0, 0]);
  });

  it('YaRN: ext_factor 0 is plain linear scaling; ext_factor 1 extrapolates the fast pairs and interpolates the slow ones', () => {
    const base = 10000, nRot = 16, pos = 5;
    const yarn: RopeParams = { base, freqScale: 0.25, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, origContext: 4096, factors: 'none' };
    const lin = ropeCosSin({ ...yarn, extFactor: 0 }, nRot, pos);
    const y = ropeCosSin(yarn, nRot, pos);
    const m = 1 + 0.1 * Math.log(4); // ggml's own magnitude factor when ext_factor ≠ 0
    for (let i = 0; i < nRot / 2; i++) {
      const theta = pos * base ** ((-2 * i) / nRot);
      expect(lin.cos[i]).toBeCloseTo(Math.cos(theta / 4), 12);
      // corr dims [2, 6]: pairs 0-2 keep the unscaled angle, pairs ≥ 6 the scaled one.
      const want = i <= 2 ? theta : i >= 6 ? theta / 4 : undefined;
      if (want !== undefined) expect(y.sin[i]).toBeCloseTo(m * Math.sin(want), 12);
    }
    // Pair 4 sits halfway up the ramp: half scaled, half not.
    const t4 = pos * base ** (-8 / nRot);
    expect(y.cos[4]).toBeCloseTo(m * Math.cos(0.5 * t4 + 0.5 * (t4 / 4)), 12);
  });

  it('matches a literal f32 transcription of ggml-cpu rope_yarn (YaRN, linear, factors)', () => {
    const yarn: RopeParams = { base: 10000, freqScale: 1 / 8, extFactor: 1, attnFactor: 0.9, betaFast: 32, betaSlow: 1, origContext: 2048, factors: 'none' };
    for (const pos of [0, 1, 7, 19]) {
      expectCacheMatches(yarn, 64, pos);
      expectCacheMatches({ ...yarn, extFactor: 0.5, betaFast: 16, betaSlow: 2 }, 32, pos);
      expectCacheMatches({ ...yarn, extFactor: 0, freqScale: 0.5 }, 16, pos, Float32Array.from({ length: 8 }, (_, i) => 1 + i));
    }
  });

  it("YaRN's magnitude: llama.cpp's attn_factor cancels ggml's 1 + 0.1·ln(s), leaving get_mscale(s)·rope.scaling.attn_factor", async () => {
    const { config } = await tinyModel({
      arch: 'qwen2', dim: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 8, ctx: 32768,
      extra: [kv.str('qwen2.rope.scaling.type', 'yarn'), kv.f32('qwen2.rope.scaling.factor', 4), kv.u32('qwen2.rope.scaling.original_context_length', 8192), kv.f32('qwen2.rope.scaling.attn_factor', 1.5)],
    });
    const r = llamaCppRope(config, false, 'none');
    expect(r).toMatchObject({ freqScale: 0.25, extFactor: 1, origContext: 8192, betaFast: 32, betaSlow: 1 });
    // At pos 0 every angle is 0: cos = the net magnitude.
    expect(ropeCosSin(r, 8, 0).cos[0]).toBeCloseTo((1 + 0.1 * Math.log(4)) * 1.5, 6);
  });
});

function expectClose(got: ArrayLike<number>, want: number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 12);
}
