// RoPE on the host: the angle table the kernels read, and the row order that
// lets one rotation kernel serve both of llama.cpp's RoPE styles.
import type { RopeParams } from './family.ts';

/**
 * The rope table, f32 (cos, sin) [contextLength][ropeDim/2], as ggml's
 * rope_yarn computes it (ggml-cpu/ops.cpp): for pair i at position p,
 * θ_extrap = p · base^(-2i/ropeDim) / factors[i], θ_interp = freqScale · θ_extrap,
 * and with YaRN (extFactor ≠ 0) a ramp between the two over the correction
 * dims, and magnitude × (1 + 0.1 ln(1/freqScale)); cos and sin × attnFactor.
 * Computed in f64 so that long positions lose no precision to f32 angle
 * arithmetic on the GPU.
 */
export function ropeTable(contextLength: number, ropeDim: number, r: RopeParams, factors?: Float32Array): Float32Array {
  const half = ropeDim / 2;
  const t = new Float32Array(contextLength * ropeDim);
  // ggml_rope_yarn_corr_dims: the dims whose wavelength spans beta_fast…beta_slow rotations of the original context.
  const corrDim = (beta: number) => (ropeDim * Math.log(r.origContext / (beta * 2 * Math.PI))) / (2 * Math.log(r.base));
  const lo = Math.max(0, Math.floor(corrDim(r.betaFast)));
  const hi = Math.min(ropeDim - 1, Math.ceil(corrDim(r.betaSlow)));
  let mscale = r.attnFactor;
  if (r.extFactor !== 0) mscale *= 1 + 0.1 * Math.log(1 / r.freqScale);
  for (let i = 0; i < half; i++) {
    const freq = r.base ** ((-2 * i) / ropeDim) / (factors?.[i] ?? 1);
    // rope_yarn_ramp(lo, hi, i0 = 2i): 1 below lo (extrapolate), 0 above hi (interpolate).
    const ramp = r.extFactor !== 0 ? (1 - Math.min(1, Math.max(0, (i - lo) / Math.max(0.001, hi - lo)))) * r.extFactor : 0;
    for (let p = 0; p < contextLength; p++) {
      const extrap = p * freq;
      const interp = r.freqScale * extrap;
      const a = ramp ? interp * (1 - ramp) + extrap * ramp : interp;
      t[(p * half + i) * 2] = Math.cos(a) * mscale;
      t[(p * half + i) * 2 + 1] = Math.sin(a) * mscale;
    }
  }
  return t;
}

/**
 * NEOX RoPE rotates pairs (i, i + ropeDim/2) of each head; the kernels rotate
 * adjacent pairs (2i, 2i+1). Storing q and k rows in the order this returns
 * (entry j = the file's row within the head) turns one into the other: q·k is
 * a sum over the same products in another order, so attention is unchanged,
 * and every fusion written for adjacent pairs serves NEOX models as they are.
 * Rows past ropeDim (partial rotary) keep their place.
 */
export function neoxOrder(headDim: number, ropeDim: number): Int32Array {
  const order = new Int32Array(headDim);
  for (let j = 0; j < headDim; j++) order[j] = j < ropeDim ? (j >> 1) + (j & 1) * (ropeDim / 2) : j;
  return order;
}

/** Applies a per-head order to `heads` consecutive heads of `size` items of `unit` bytes (or elements). */
export function permuteHeads<T extends Uint8Array | Float32Array>(src: T, heads: number, order: Int32Array, unit: number): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const hd = order.length;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < hd; j++) {
      const from = (h * hd + order[j]) * unit;
      out.set(src.subarray(from, from + unit) as never, (h * hd + j) * unit);
    }
  }
  return out;
}
