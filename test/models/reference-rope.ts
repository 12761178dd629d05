// RoPE for the float64 reference, transcribed from ggml-cpu's rope
// (ggml/src/ggml-cpu/ops.cpp: rope_yarn, rope_yarn_ramp, ggml_rope_cache_init,
// rotate_pairs) and ggml.c's ggml_rope_yarn_corr_dims, in f64 and written
// independently of src/models (the GPU side), so it can arbitrate it.
import type { RopeParams } from '../../src/models/family.ts';

/** ggml_rope_yarn_corr_dim: the rotary dim at which the angle makes `nRot` turns over the original context. */
function corrDim(nDims: number, nCtxOrig: number, nRot: number, base: number): number {
  return (nDims * Math.log(nCtxOrig / (nRot * 2 * Math.PI))) / (2 * Math.log(base));
}

/** ggml_rope_yarn_corr_dims: [low, high] pair-index bounds of YaRN's ramp (floor/ceil then clamped, as ggml does). */
export function yarnCorrDims(nDims: number, nCtxOrig: number, base: number, betaFast: number, betaSlow: number): [number, number] {
  const start = Math.floor(corrDim(nDims, nCtxOrig, betaFast, base));
  const end = Math.ceil(corrDim(nDims, nCtxOrig, betaSlow, base));
  return [Math.max(0, start), Math.min(nDims - 1, end)];
}

/** rope_yarn_ramp: 1 below `low` (extrapolate), 0 above `high` (interpolate); i0 is the even element index, i0/2 the pair. */
export function yarnRamp(low: number, high: number, i0: number): number {
  const y = (Math.floor(i0 / 2) - low) / Math.max(0.001, high - low);
  return 1 - Math.min(1, Math.max(0, y));
}

/**
 * cos and sin of every rotary pair at position `pos` (ggml_rope_cache_init +
 * rope_yarn), both already multiplied by the magnitude mscale. Pair i's base
 * angle is pos·base^(-2i/nRot) / factors[i]; it is scaled by freqScale, and with
 * YaRN (extFactor ≠ 0) blended back toward the unscaled angle by the ramp, and
 * mscale gains ggml's own ×(1 + 0.1·ln(1/freqScale)) — which llama.cpp's
 * context setup cancels inside attnFactor (plan.ropes[].attnFactor already
 * holds that cancellation).
 */
export function ropeCosSin(p: RopeParams, nRot: number, pos: number, factors?: ArrayLike<number>): { cos: Float64Array; sin: Float64Array } {
  const half = nRot / 2;
  const cos = new Float64Array(half), sin = new Float64Array(half);
  const [low, high] = yarnCorrDims(nRot, p.origContext, p.base, p.betaFast, p.betaSlow);
  let mscale = p.attnFactor;
  if (p.extFactor !== 0) mscale *= 1 + 0.1 * Math.log(1 / p.freqScale);
  for (let i = 0; i < half; i++) {
    const extrap = (pos * p.base ** ((-2 * i) / nRot)) / (factors ? factors[i] : 1);
    const interp = p.freqScale * extrap;
    let theta = interp;
    if (p.extFactor !== 0) {
      const mix = yarnRamp(low, high, 2 * i) * p.extFactor;
      theta = interp * (1 - mix) + extrap * mix;
    }
    cos[i] = Math.cos(theta) * mscale;
    sin[i] = Math.sin(theta) * mscale;
  }
  return { cos, sin };
}

/**
 * Rotates the first nRot dims of each head in place (the rest pass through).
 * 'norm' (GGML_ROPE_TYPE_NORMAL) pairs (2i, 2i+1); 'neox' pairs (i, i+nRot/2).
 * Pair i uses angle i in both modes: only which elements form the pair differs.
 */
export function applyRope(x: Float64Array, nHeads: number, headDim: number, nRot: number, mode: 'norm' | 'neox', cs: { cos: Float64Array; sin: Float64Array }): void {
  const half = nRot / 2;
  for (let h = 0; h < nHeads; h++) {
    const o = h * headDim;
    for (let i = 0; i < half; i++) {
      const a = mode === 'norm' ? o + 2 * i : o + i;
      const b = mode === 'norm' ? a + 1 : a + half;
      const x0 = x[a], x1 = x[b];
      x[a] = x0 * cs.cos[i] - x1 * cs.sin[i];
      x[b] = x0 * cs.sin[i] + x1 * cs.cos[i];
    }
  }
}

/** Plain (unscaled, non-YaRN) rope parameters: base only. */
export function plainRope(base: number, freqScale = 1): RopeParams {
  return { base, freqScale, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, origContext: 2048, factors: 'none' };
}
