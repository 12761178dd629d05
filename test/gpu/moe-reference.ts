// Float64 references for the MoE kernels: llama.cpp's build_moe_ffn router
// (top-k, gating, normalisation, scale) and the expert products.
import type { Gating } from '../../src/gpu/router.ts';

export interface RouteRef {
  ids: Uint32Array; // [n, k]
  weights: Float64Array; // [n, k]
}

/** logits f32 [n, E] (+ bias, added in f32 as the kernel does) → each token's k experts by descending logit (ties: lower id) and weights. */
export function refRoute(logits: Float32Array, n: number, E: number, k: number, gating: Gating, normalize: boolean, scale: number, bias?: Float32Array): RouteRef {
  const ids = new Uint32Array(n * k);
  const weights = new Float64Array(n * k);
  for (let t = 0; t < n; t++) {
    const l = Array.from({ length: E }, (_, e) => Math.fround(logits[t * E + e] + (bias ? bias[e] : 0)));
    const order = l.map((v, e) => [v, e]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((x) => x[1]);
    let w: number[];
    if (gating === 'softmax') {
      const m = Math.max(...l);
      const z = l.reduce((s, v) => s + Math.exp(v - m), 0);
      w = order.map((e) => Math.exp(l[e] - m) / z);
    } else if (gating === 'sigmoid') {
      w = order.map((e) => 1 / (1 + Math.exp(-l[e])));
    } else {
      const m = l[order[0]];
      const z = order.reduce((s, e) => s + Math.exp(l[e] - m), 0);
      w = order.map((e) => Math.exp(l[e] - m) / z);
    }
    if (normalize) {
      const s = Math.max(w.reduce((a, b) => a + b, 0), 6.103515625e-5);
      w = w.map((v) => v / s);
    }
    order.forEach((e, s) => {
      ids[t * k + s] = e;
      weights[t * k + s] = w[s] * scale;
    });
  }
  return { ids, weights };
}

/**
 * y[p, j] = W[ids[p], j, :] · x(p) for every pair p = t·k + s of n tokens
 * (x(p) = row t of x, or row p when xPerPair), W dequantized [E, rows, cols].
 */
export function refPairs(w: Float32Array, rows: number, cols: number, x: Float32Array, xPerPair: boolean, r: RouteRef, n: number, k: number): Float64Array {
  const y = new Float64Array(n * k * rows);
  for (let p = 0; p < n * k; p++) {
    const e = r.ids[p];
    const xo = (xPerPair ? p : Math.floor(p / k)) * cols;
    for (let j = 0; j < rows; j++) {
      let s = 0;
      const wo = (e * rows + j) * cols;
      for (let c = 0; c < cols; c++) s += w[wo + c] * x[xo + c];
      y[p * rows + j] = s;
    }
  }
  return y;
}

/** out[t, j] = out0[t, j] + Σ_s weight[t, s] · pairs[t, s, j]. */
export function refCombine(pairs: Float64Array, r: RouteRef, n: number, k: number, rows: number, out0?: Float32Array): Float64Array {
  const out = new Float64Array(n * rows);
  for (let t = 0; t < n; t++)
    for (let j = 0; j < rows; j++) {
      let v = out0 ? out0[t * rows + j] : 0;
      for (let s = 0; s < k; s++) v += r.weights[t * k + s] * pairs[(t * k + s) * rows + j];
      out[t * rows + j] = v;
    }
  return out;
}

/** out[t, j] = out0[t, j] + σ(w · g[t]) · y[t, j] for t < n (sigmoid_gate_add.wgsl; Qwen2-MoE's shared expert); g [n, dim], y and out0 [n, rows]. */
export function refSigmoidGateAdd(g: Float32Array, w: Float32Array, y: Float32Array, out0: Float32Array, n: number, dim: number, rows: number): Float64Array {
  const out = Float64Array.from(out0.subarray(0, n * rows));
  for (let t = 0; t < n; t++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += w[i] * g[t * dim + i];
    const gate = 1 / (1 + Math.exp(-s));
    for (let j = 0; j < rows; j++) out[t * rows + j] += gate * y[t * rows + j];
  }
  return out;
}
