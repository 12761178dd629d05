// The float64 mixture-of-experts FFN (llama.cpp's build_moe_ffn) for the
// reference model (reference.ts): router logits, top-k by logit (ties to the
// lower id, as the GPU router; ggml's argsort order for exact ties is not
// specified), the family's gating and renormalisation, and Σ_s w_s ·
// down_e(act(gate_e·x) ⊙ up_e·x) over the chosen experts.
import { tensorNames } from '../../src/config.ts';
import type { MoePlan } from '../../src/models/family.ts';

/** A MoE layer's dequantized weights: the router [E, dim] and the experts [E, rows, cols] (ggml row-major). */
export interface RefMoe {
  gateInp: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

/** Layer il's MoE weights from the dequantized tensor map; get throws on a missing one. */
export function refMoeWeights(il: number, get: (name: string) => Float32Array): RefMoe {
  const n = tensorNames.layer(il);
  return { gateInp: get(n.ffn_gate_inp), gate: get(n.ffn_gate_exps), up: get(n.ffn_up_exps), down: get(n.ffn_down_exps) };
}

/** W[rowOffset + r]·x for r < rows, in f64. */
function rowsTimes(w: Float32Array, x: Float64Array, rows: number, cols: number, rowOffset: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = (rowOffset + r) * cols;
    for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
    y[r] = s;
  }
  return y;
}

/** The chosen experts (best first) and their weights for router logits l. */
export function refRouteOne(l: Float64Array, m: MoePlan): { ids: number[]; weights: number[] } {
  const ids = Array.from(l, (_, e) => e).sort((a, b) => l[b] - l[a] || a - b).slice(0, m.used);
  let w: number[];
  if (m.gating === 'softmax') {
    const mx = Math.max(...l);
    const z = l.reduce((s, v) => s + Math.exp(v - mx), 0);
    w = ids.map((e) => Math.exp(l[e] - mx) / z);
  } else if (m.gating === 'sigmoid') {
    w = ids.map((e) => 1 / (1 + Math.exp(-l[e])));
  } else {
    const mx = l[ids[0]];
    const z = ids.reduce((s, e) => s + Math.exp(l[e] - mx), 0);
    w = ids.map((e) => Math.exp(l[e] - mx) / z);
  }
  if (m.normalize) {
    const s = Math.max(w.reduce((a, b) => a + b, 0), 6.103515625e-5);
    w = w.map((v) => v / s);
  }
  return { ids, weights: w };
}

/** The MoE FFN of one token's normed input x [dim]: Σ_s w_s · down_e(act(gate_e·x) ⊙ up_e·x) [dim]. */
export function refMoeFfn(x: Float64Array, w: RefMoe, m: MoePlan, act: (v: number) => number): Float64Array {
  const dim = x.length, ff = m.ff;
  const { ids, weights } = refRouteOne(rowsTimes(w.gateInp, x, m.experts, dim, 0), m);
  const out = new Float64Array(dim);
  ids.forEach((e, s) => {
    const g = rowsTimes(w.gate, x, ff, dim, e * ff);
    const u = rowsTimes(w.up, x, ff, dim, e * ff);
    for (let i = 0; i < ff; i++) g[i] = act(g[i]) * u[i];
    const y = rowsTimes(w.down, g, dim, ff, e * dim);
    for (let i = 0; i < dim; i++) out[i] += weights[s] * y[i];
  });
  return out;
}
