// A plain float64 forward pass on dequantized weights for every family qllm
// runs (src/models/family.ts): the CPU truth the GPU model is checked against.
// Slow and simple on purpose; one token at a time with an f64 KV cache. Weights
// are ggml row-major: W[rows][cols], y = W·x. The maths follows llama.cpp's
// graph builders (src/models/<arch>.cpp, llama-graph.cpp) step by step. The
// family's shape and scales (rope mode, activation, norms, embedding/attention/
// residual/logit scales, soft-caps, NoPE layers) come from planModel; the
// sliding windows and every RoPE argument are derived independently from the
// Config as llama.cpp does (reference-hparams.ts), because that is where
// llama.cpp's behaviour is least obvious. reference-llamacpp.test.ts checks the
// whole against llama.cpp itself.
import type { Config, RopeScaling } from '../../src/config.ts';
import { readConfig, tensorNames } from '../../src/config.ts';
import { type Plan, type RopeParams, planModel } from '../../src/models/family.ts';
import type { GgufFile } from '../../src/gguf/types.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { roundF16 } from '../../src/quant/half.ts';
import { llamaCppRope, llamaCppWindows, ropeFactorKind } from './reference-hparams.ts';
import { matvec } from './reference-math.ts';
import { type RefMoe, refMoeFfn, refMoeWeights } from './reference-moe.ts';
import { applyRope, plainRope, ropeCosSin } from './reference-rope.ts';

/** Dequantized weights by GGUF tensor name (f32 values, ggml row-major). */
export type RefWeights = ReadonlyMap<string, Float32Array>;


/** RMSNorm (ggml_rms_norm then × weight): x / sqrt(mean(x²) + eps) · weight. */
export function rmsnorm(x: Float64Array, weight: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * scale * weight[i];
  return y;
}

/**
 * llama.cpp "normal" rope (arch llama): rotates adjacent pairs (x[2i], x[2i+1])
 * of each head by pos·base^(-2i/ropeDim); dims ≥ ropeDim pass through. Linear
 * rope scaling divides the position by the factor. In place on [nHeads*headDim].
 */
export function rope(x: Float64Array, nHeads: number, headDim: number, ropeDim: number, pos: number, base: number, linearFactor = 1, freqFactors?: Float32Array): void {
  applyRope(x, nHeads, headDim, ropeDim, 'norm', ropeCosSin(plainRope(base, 1 / linearFactor), ropeDim, pos, freqFactors));
}

export const silu = (v: number) => v / (1 + Math.exp(-v));

/** ggml's GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));

/**
 * ggml-cpu's GELU as llama.cpp's CPU backend computes it (GGML_GELU_FP16):
 * the input rounded to f16 indexes a table of f16-rounded GELU values; 0 below
 * −10, identity above 10. Only for comparing with llama.cpp's CPU output: the
 * reference itself (and a GPU) computes GELU exactly.
 */
export const geluGgmlCpu = (v: number) => (v <= -10 ? 0 : v >= 10 ? v : roundF16(geluTanh(roundF16(v))));

/** cap·tanh(x/cap): Gemma's soft-capping; 0 = off. */
export const softcap = (v: number, cap: number) => (cap > 0 ? cap * Math.tanh(v / cap) : v);

interface RefLayer {
  attnNorm?: Float32Array; // absent: OLMo2 (no pre-norm)
  wqkv?: Float32Array; bqkv?: Float32Array; // fused q|k|v rows (Phi-3)
  wq?: Float32Array; wk?: Float32Array; wv?: Float32Array;
  bq?: Float32Array; bk?: Float32Array; bv?: Float32Array;
  qNorm?: Float32Array; kNorm?: Float32Array;
  wo: Float32Array; bo?: Float32Array;
  attnPostNorm?: Float32Array;
  ffnNorm?: Float32Array;
  wGate?: Float32Array; // absent: ffn_up holds gate|up (Phi-3)
  wUp?: Float32Array; wDown?: Float32Array; // absent: a MoE layer
  moe?: RefMoe; // mixture of experts (reference-moe.ts) instead of the dense FFN
  sinks?: Float32Array; // gpt-oss: one logit per head that joins each softmax
  bGate?: Float32Array; bUp?: Float32Array; bDown?: Float32Array;
  ffnPostNorm?: Float32Array;
}

export interface ReferenceOptions {
  /** Context length the model is run at: LongRoPE picks its long or short factors by it (llama.cpp's n_ctx_seq). Default: the training context. */
  contextLength?: number;
  /** Replaces planModel's plan (scales, soft-caps, NoPE layers): tests switch single features on or off with it. */
  plan?: Plan;
  /** Replaces the per-layer sliding windows (0: none) llama.cpp would use. */
  windows?: readonly number[];
  /** GELU through ggml-cpu's f16 table (geluGgmlCpu): for tight comparisons with llama.cpp's CPU backend. */
  ggmlCpuGelu?: boolean;
  /** Called with intermediate vectors, named after llama.cpp's cb() names (Qcur, Kcur after RoPE, kqv_out, ffn_out, l_out, result_norm...). */
  trace?: (name: string, layer: number, v: Float64Array) => void;
  /** What a token's K (after RoPE) and V rows become in the cache (a KV type's round trip, e.g. q8_0); default: kept in f64. */
  kvStore?: (row: Float64Array) => Float64Array;
}

/** Fills RopeScaling fields older callers leave out (their configs predate YaRN/LongRoPE support). */
function withDefaults(c: Config): Config {
  const given: Partial<RopeScaling> = c.ropeScaling;
  const s: RopeScaling = { type: 'linear', factor: 1, attnFactor: 1, yarnExtFactor: undefined, yarnBetaFast: 32, yarnBetaSlow: 1, yarnLogMul: 0, originalContextLength: 0, ...given };
  return { ...c, ropeScaling: s, valueDim: c.valueDim ?? c.headDim };
}

/** The float64 forward pass of any supported family (llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3, granite, smollm3, olmo2). */
export class ReferenceModel {
  readonly config: Config;
  readonly plan: Plan;
  private readonly embd: Float32Array;
  private readonly outNorm: Float32Array;
  private readonly out: Float32Array;
  private readonly outBias: Float32Array | undefined;
  private readonly layers: RefLayer[] = [];
  /** Sliding window of each layer (0: full attention), as llama.cpp sets it (reference-hparams.ts). */
  readonly windows: readonly number[];
  /** The distinct RoPE argument sets (global, sliding-window) and each layer's index into them (-1: no RoPE). */
  readonly ropes: RopeParams[] = [];
  readonly layerRope: number[] = [];
  /** The per-pair divisors llama.cpp feeds RoPE (rope_freqs or LongRoPE's long/short), if any. */
  readonly ropeFactors: Float32Array | undefined;
  private readonly trace: ReferenceOptions['trace'];
  private readonly kvStore: ReferenceOptions['kvStore'];
  private readonly gelu: (v: number) => number;
  /** Per layer: [pos][nKvHeads*headDim] (K after norm and RoPE) and [pos][nKvHeads*valueDim]. */
  private readonly kCache: Float64Array[][] = [];
  private readonly vCache: Float64Array[][] = [];

  constructor(config: Config, w: RefWeights, opts: ReferenceOptions = {}) {
    this.config = withDefaults(config);
    const c = this.config;
    this.plan = opts.plan ?? planModel(c, opts.contextLength ?? c.contextLength, (n) => w.has(n), 'reference');
    this.trace = opts.trace;
    this.kvStore = opts.kvStore;
    this.gelu = opts.ggmlCpuGelu ? geluGgmlCpu : geluTanh;
    const f = this.plan.family;
    const get = (n: string) => {
      const t = w.get(n);
      if (!t) throw new Error(`reference: missing tensor ${n}`);
      return t;
    };
    this.embd = get(tensorNames.token_embd);
    this.outNorm = get(tensorNames.output_norm);
    this.out = w.get(tensorNames.output) ?? this.embd; // tied embeddings
    this.outBias = w.get('output.bias'); // Qwen2, Phi-3 (optional in llama.cpp)
    // Windows and RoPE arguments are derived from the Config the way llama.cpp
    // does (reference-hparams.ts), not copied from the plan; the plan only says
    // which layers have no RoPE (rope < 0).
    this.windows = opts.windows ?? llamaCppWindows(c);
    if (this.windows.length !== c.nLayers) throw new Error(`reference: ${this.windows.length} windows for ${c.nLayers} layers`);
    const kind = ropeFactorKind(c, (n) => w.has(n), opts.contextLength ?? c.contextLength);
    const byKind = { freqs: tensorNames.rope_freqs, long: tensorNames.rope_factors_long, short: tensorNames.rope_factors_short, none: '' };
    this.ropeFactors = w.get(byKind[kind]);
    for (let l = 0; l < c.nLayers; l++) {
      if (this.plan.layers[l].rope < 0) {
        this.layerRope.push(-1);
        continue;
      }
      const r = llamaCppRope(c, this.windows[l] > 0, kind);
      let i = this.ropes.findIndex((o) => JSON.stringify(o) === JSON.stringify(r));
      if (i < 0) i = this.ropes.push(r) - 1;
      this.layerRope.push(i);
    }
    for (let i = 0; i < c.nLayers; i++) {
      const n = tensorNames.layer(i);
      const p = `blk.${i}.`;
      const fusedQkv = w.get(n.attn_qkv); // llama.cpp's create_tensor_qkv prefers the fused tensor when present
      const moe = this.plan.moe ? refMoeWeights(i, get, this.plan.moe) : undefined;
      const wGate = w.get(n.ffn_gate);
      this.layers.push({
        attnNorm: f.preNorm === false ? undefined : get(n.attn_norm),
        wqkv: fusedQkv, bqkv: w.get(n.attn_qkv_bias),
        wq: fusedQkv ? undefined : get(n.attn_q), wk: fusedQkv ? undefined : get(n.attn_k), wv: fusedQkv ? undefined : get(n.attn_v),
        bq: w.get(n.attn_q_bias), bk: w.get(n.attn_k_bias), bv: w.get(n.attn_v_bias),
        qNorm: f.qkNorm ? get(n.attn_q_norm) : undefined, kNorm: f.qkNorm ? get(n.attn_k_norm) : undefined,
        wo: get(n.attn_output), bo: w.get(`${p}attn_output.bias`),
        attnPostNorm: f.postNorm ? get(n.attn_post_norm) : undefined,
        ffnNorm: f.preNorm === false ? undefined : get(f.ffnNormIsPostAttn ? n.attn_post_norm : n.ffn_norm),
        sinks: f.sinks ? get(n.attn_sinks) : undefined,
        wGate, wUp: moe ? undefined : get(n.ffn_up), wDown: moe ? undefined : get(n.ffn_down), moe,
        bGate: w.get(`${p}ffn_gate.bias`), bUp: w.get(`${p}ffn_up.bias`), bDown: w.get(`${p}ffn_down.bias`),
        ffnPostNorm: f.postNorm ? get(n.ffn_post_norm) : undefined,
      });
      this.kCache.push([]);
      this.vCache.push([]);
    }
  }

  /** Dequantizes a GGUF's tensors and builds the reference (readConfig's Config unless one is given). */
  static async load(file: GgufFile, opts: ReferenceOptions & { config?: Config } = {}): Promise<ReferenceModel> {
    return new ReferenceModel(opts.config ?? readConfig(file), await loadRefWeights(file), opts);
  }

  /** Tokens in the KV cache (the next position). */
  get length(): number {
    return this.kCache[0]?.length ?? 0;
  }

  /** Forgets the KV cache (positions restart at 0). */
  reset(): void {
    for (const c of this.kCache) c.length = 0;
    for (const c of this.vCache) c.length = 0;
  }

  /** Runs one token at position `pos` (must equal the cache length) and returns its logits. */
  step(token: number, pos: number): Float64Array {
    const c = this.config, P = this.plan, f = P.family;
    const { dim, nHeads, nKvHeads, headDim, valueDim, ffnDim, rmsEps: eps } = c;
    if (pos !== this.length && c.nLayers > 0) throw new Error(`reference: pos ${pos} != cache length ${this.length}`);
    if (!(token >= 0 && token < c.vocabSize)) throw new Error(`reference: token ${token} outside the vocabulary (${c.vocabSize})`);
    const qDim = nHeads * headDim, kvDim = nKvHeads * headDim, vDim = nKvHeads * valueDim;
    const tr = this.trace ?? (() => {});
    // RoPE tables at this position, one per distinct plan.ropes entry.
    const cs = this.ropes.map((r) => ropeCosSin(r, c.ropeDim, pos, this.ropeFactors));

    // Embedding row × embedScale (Gemma: sqrt(dim); Granite: embedding_scale).
    const x = new Float64Array(dim);
    for (let i = 0; i < dim; i++) x[i] = this.embd[token * dim + i] * P.embedScale;
    tr('inp_scaled', -1, x);

    for (let l = 0; l < c.nLayers; l++) {
      const L = this.layers[l];
      // Attention branch. OLMo2 has no pre-norm: q/k/v read the residual stream itself.
      const h = L.attnNorm ? rmsnorm(x, L.attnNorm, eps) : x;
      let q: Float64Array, k: Float64Array, v: Float64Array;
      if (L.wqkv) {
        // build_qkv's fused path: one matmul, then views at rows [0,qDim), [qDim,qDim+kvDim), [qDim+kvDim, ...).
        q = matvec(L.wqkv, h, qDim, dim, 0);
        k = matvec(L.wqkv, h, kvDim, dim, qDim);
        v = matvec(L.wqkv, h, kvDim, dim, qDim + kvDim);
        if (L.bqkv) {
          addInto(q, L.bqkv, 0);
          addInto(k, L.bqkv, qDim);
          addInto(v, L.bqkv, qDim + kvDim);
        }
      } else {
        q = matvec(L.wq!, h, qDim, dim);
        k = matvec(L.wk!, h, kvDim, dim);
        v = matvec(L.wv!, h, vDim, dim);
        if (L.bq) addInto(q, L.bq, 0);
        if (L.bk) addInto(k, L.bk, 0);
        if (L.bv) addInto(v, L.bv, 0);
      }
      // q/k RMSNorm before RoPE: per head (Qwen3, Gemma 3: weight [headDim]) or over the whole projection (OLMo2).
      if (f.qkNorm === 'head') {
        q = headNorm(q, nHeads, headDim, L.qNorm!, eps);
        k = headNorm(k, nKvHeads, headDim, L.kNorm!, eps);
      } else if (f.qkNorm === 'full') {
        q = rmsnorm(q, L.qNorm!, eps);
        k = rmsnorm(k, L.kNorm!, eps);
      }
      const ri = this.layerRope[l];
      if (ri >= 0) {
        applyRope(q, nHeads, headDim, c.ropeDim, f.rope, cs[ri]);
        applyRope(k, nKvHeads, headDim, c.ropeDim, f.rope, cs[ri]);
      }
      tr('Qcur', l, q);
      tr('Kcur', l, k);
      tr('Vcur', l, v);
      this.kCache[l].push(this.kvStore ? this.kvStore(k) : k);
      this.vCache[l].push(this.kvStore ? this.kvStore(v) : v);
      const att = this.attend(l, q, pos, this.windows[l], L.sinks);
      tr('kqv_out', l, att);
      let o = matvec(L.wo, att, dim, nHeads * valueDim);
      if (L.bo) addInto(o, L.bo, 0);
      if (L.attnPostNorm) o = rmsnorm(o, L.attnPostNorm, eps);
      for (let i = 0; i < dim; i++) x[i] += P.residualScale * o[i];
      tr('ffn_inp', l, x);

      // Gated FFN: act(gate)·up, act = SiLU (SwiGLU) or GELU-tanh (GeGLU).
      const h2 = L.ffnNorm ? rmsnorm(x, L.ffnNorm, eps) : x;
      const act = f.act === 'gelu' ? this.gelu : silu;
      let g: Float64Array, u: Float64Array;
      if (L.moe) {
        const down = refMoeFfn(h2, L.moe, P.moe!, act);
        tr('ffn_out', l, down);
        for (let i = 0; i < dim; i++) x[i] += P.residualScale * down[i];
        tr('l_out', l, x);
        continue;
      }
      if (L.wGate) {
        g = matvec(L.wGate, h2, ffnDim, dim);
        u = matvec(L.wUp!, h2, ffnDim, dim);
      } else {
        // Phi-3's fused ffn_up: ggml_swiglu activates the first half of the rows (the gate), multiplies by the second (up).
        g = matvec(L.wUp!, h2, ffnDim, dim, 0);
        u = matvec(L.wUp!, h2, ffnDim, dim, ffnDim);
      }
      if (L.bUp) addInto(u, L.bUp, 0);
      if (L.bGate) addInto(g, L.bGate, 0);
      for (let i = 0; i < ffnDim; i++) g[i] = act(g[i]) * u[i];
      let down = matvec(L.wDown!, g, dim, ffnDim);
      if (L.bDown) addInto(down, L.bDown, 0);
      if (L.ffnPostNorm) down = rmsnorm(down, L.ffnPostNorm, eps);
      tr('ffn_out', l, down);
      for (let i = 0; i < dim; i++) x[i] += P.residualScale * down[i];
      tr('l_out', l, x);
    }
    const xn = rmsnorm(x, this.outNorm, eps);
    tr('result_norm', -1, xn);
    const logits = matvec(this.out, xn, c.vocabSize, dim);
    if (this.outBias) addInto(logits, this.outBias, 0);
    // Granite divides by logit_scale; Gemma 2 (and Gemma 3 when set) soft-caps.
    for (let i = 0; i < logits.length; i++) logits[i] = softcap(logits[i] * P.logitScale, P.finalSoftcap);
    tr('result_output', -1, logits);
    return logits;
  }

  /**
   * One query against layer l's cache: scores s = attnScale·(q·k), soft-capped
   * as cap·tanh(s/cap) (Gemma 2: llama.cpp pre-scales Q, so the cap sees the
   * scaled score), then softmax over the visible positions and the weighted sum
   * of V. Position j is visible from p when j ≤ p and p − j < window (window 0:
   * all), llama_hparams::is_masked_swa's STANDARD rule. GQA: q head h reads kv
   * head ⌊h / (nHeads/nKvHeads)⌋ (ggml_mul_mat's broadcast).
   */
  private attend(l: number, q: Float64Array, pos: number, window: number, sinks?: Float32Array): Float64Array {
    const { nHeads, nKvHeads, headDim, valueDim } = this.config;
    const P = this.plan;
    const group = nHeads / nKvHeads;
    const first = window > 0 ? Math.max(0, pos - window + 1) : 0;
    const n = pos + 1;
    const att = new Float64Array(nHeads * valueDim);
    const scores = new Float64Array(n);
    for (let hh = 0; hh < nHeads; hh++) {
      const kvh = Math.floor(hh / group);
      let mx = -Infinity;
      for (let t = first; t < n; t++) {
        const kt = this.kCache[l][t];
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[hh * headDim + d] * kt[kvh * headDim + d];
        scores[t] = softcap(s * P.attnScale, P.attnSoftcap);
        if (scores[t] > mx) mx = scores[t];
      }
      // gpt-oss's sink: exp(sink) joins the denominator (ggml_soft_max_add_sinks) and weighs no value.
      let sum = sinks ? Math.exp(sinks[hh] - mx) : 0;
      for (let t = first; t < n; t++) {
        scores[t] = Math.exp(scores[t] - mx);
        sum += scores[t];
      }
      for (let t = first; t < n; t++) {
        const p = scores[t] / sum;
        const vt = this.vCache[l][t];
        for (let d = 0; d < valueDim; d++) att[hh * valueDim + d] += p * vt[kvh * valueDim + d];
      }
    }
    return att;
  }

  /** Runs tokens from position pos and returns each token's logits. */
  run(tokens: number[], pos: number): Float64Array[] {
    return tokens.map((t, i) => this.step(t, pos + i));
  }
}

/** The Llama-only name older tests use; every family runs through it now. */
export class ReferenceLlama extends ReferenceModel {}

function addInto(y: Float64Array, b: Float32Array, offset: number): void {
  for (let i = 0; i < y.length; i++) y[i] += b[offset + i];
}

/** RMSNorm of each head's slice with a shared [headDim] weight (build_norm on the [headDim, heads] view). */
function headNorm(x: Float64Array, heads: number, headDim: number, w: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let h = 0; h < heads; h++) y.set(rmsnorm(x.subarray(h * headDim, (h + 1) * headDim), w, eps), h * headDim);
  return y;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Indices of the k largest values, largest first. */
export function topK(a: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: a.length }, (_, i) => i).sort((x, y) => a[y] - a[x]).slice(0, k);
}

/** log-softmax in f64 (to compare against llama.cpp's probabilities). */
export function logSoftmax(a: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < a.length; i++) mx = Math.max(mx, a[i]);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.exp(a[i] - mx);
  const lse = mx + Math.log(s);
  return Float64Array.from(a, (v) => v - lse);
}

/** Dequantizes every tensor of a GGUF file (test helper; small models only). */
export async function loadRefWeights(file: GgufFile): Promise<Map<string, Float32Array>> {
  const w = new Map<string, Float32Array>();
  for (const t of file.tensors) w.set(t.name, dequantize(t.type.id, await file.readTensor(t), t.nElements));
  return w;
}
