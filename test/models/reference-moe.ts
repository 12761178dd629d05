// The float64 mixture-of-experts FFN (llama.cpp's build_moe_ffn) for the
// reference model (reference.ts): router logits, top-k by logit (ties to the
// lower id, as the GPU router; ggml's argsort order for exact ties is not
// specified), the family's gating and renormalisation, and Σ_s w_s ·
// down_e(act(gate_e·x) ⊙ up_e·x) over the chosen experts; Qwen2-MoE adds its
// shared expert, σ(w_shexp·x) · down_s(silu(gate_s·x) ⊙ up_s·x) (qwen2moe.cpp).
import { tensorNames } from '../../src/config.ts';
import type { MoePlan } from '../../src/models/family.ts';
import { matvec } from './reference-math.ts';

/** A MoE layer's dequantized weights: the router [E, dim] and the experts [E, rows, cols] (ggml row-major). */
export interface RefMoe {
  gateInp: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
  /** gpt-oss: the router's bias [E] and the experts' biases [E, ff], [E, dim]. */
  gateInpBias?: Float32Array;
  gateBias?: Float32Array;
  upBias?: Float32Array;
  downBias?: Float32Array;
  /** Qwen2-MoE: the shared expert's gate [dim] and FFN [sharedFf, dim], [sharedFf, dim], [dim, sharedFf]. */
  shared?: { gateInp: Float32Array; gate: Float32Array; up: Float32Array; down: Float32Array };
}

/** Layer il's MoE weights from the dequantized tensor map (the plan says which extras the family has); get throws on a missing one. */
export function refMoeWeights(il: number, get: (name: string) => Float32Array, m: MoePlan): RefMoe {
  const n = tensorNames.layer(il);
  const w: RefMoe = { gateInp: get(n.ffn_gate_inp), gate: get(n.ffn_gate_exps), up: get(n.ffn_up_exps), down: get(n.ffn_down_exps) };
  if (m.sharedFf) w.shared = { gateInp: get(n.ffn_gate_inp_shexp), gate: get(n.ffn_gate_shexp), up: get(n.ffn_up_shexp), down: get(n.ffn_down_shexp) };
  if (!m.oai) return w;
  return { ...w, gateInpBias: get(n.ffn_gate_inp_bias), gateBias: get(n.ffn_gate_exps_bias), upBias: get(n.ffn_up_exps_bias), downBias: get(n.ffn_down_exps_bias) };
}

/** ggml_swiglu_oai (alpha 1.702, limit 7): min(g, 7)·σ(1.702·min(g, 7)) · (clamp(u, ±7) + 1). */
export function swigluOai(g: number, u: number): number {
  const x = Math.min(g, 7), y = Math.min(Math.max(u, -7), 7);
  return (x / (1 + Math.exp(-1.702 * x))) * (y + 1);
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

/**
 * The MoE FFN of one token's normed input x [dim]: Σ_s w_s · down_e(act(gate_e·x) ⊙ up_e·x) [dim].
 * gpt-oss (m.oai): the router's bias joins the logits, each expert product gets its expert's bias, and the activation is swigluOai.
 */
export function refMoeFfn(x: Float64Array, w: RefMoe, m: MoePlan, act: (v: number) => number): Float64Array {
  const dim = x.length, ff = m.ff;
  const logits = matvec(w.gateInp, x, m.experts, dim, 0);
  if (w.gateInpBias) for (let e = 0; e < m.experts; e++) logits[e] += w.gateInpBias[e];
  const { ids, weights } = refRouteOne(logits, m);
  const out = new Float64Array(dim);
  const bias = (y: Float64Array, b: Float32Array | undefined, e: number) => {
    if (b) for (let i = 0; i < y.length; i++) y[i] += b[e * y.length + i];
  };
  ids.forEach((e, s) => {
    const g = matvec(w.gate, x, ff, dim, e * ff);
    const u = matvec(w.up, x, ff, dim, e * ff);
    bias(g, w.gateBias, e);
    bias(u, w.upBias, e);
    for (let i = 0; i < ff; i++) g[i] = m.oai ? swigluOai(g[i], u[i]) : act(g[i]) * u[i];
    const y = matvec(w.down, g, dim, ff, e * dim);
    bias(y, w.downBias, e);
    for (let i = 0; i < dim; i++) out[i] += weights[s] * y[i];
  });
  const sh = w.shared;
  if (sh) {
    // build_ffn(LLM_FFN_SILU, LLM_FFN_PAR) on the same x, times σ(w·x) (llama.cpp: silu(v)/v), added to the routed sum.
    const sf = m.sharedFf;
    const gate = 1 / (1 + Math.exp(-matvec(sh.gateInp, x, 1, dim, 0)[0]));
    const g = matvec(sh.gate, x, sf, dim, 0);
    const u = matvec(sh.up, x, sf, dim, 0);
    for (let i = 0; i < sf; i++) g[i] = act(g[i]) * u[i];
    const y = matvec(sh.down, g, dim, sf, 0);
    for (let i = 0; i < dim; i++) out[i] += gate * y[i];
  }
  return out;
}
