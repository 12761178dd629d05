// Per-architecture layout of a synthetic model: the metadata keys llama.cpp's
// convert_hf_to_gguf.py writes for each family (conversion/<family>.py) and
// the tensors llama.cpp's loader creates (src/models/<arch>.cpp
// load_arch_tensors), with the initial std of every weight. make-model.ts
// resolves the options, picks weight types and writes the file.
import { tensorNames } from '../config.ts';
import { UsageError } from '../errors.ts';
import { type GgufKV, GgufValueType } from '../gguf/types.ts';
import { kv } from '../gguf/writer.ts';

export const ARCHES = ['llama', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3', 'phi3', 'granite', 'smollm3', 'olmo2'] as const;
/** Mixture-of-experts families ('mixtral' is a llama GGUF with expert_count set). */
export const MOE_ARCHES = ['qwen3moe', 'mixtral', 'olmoe', 'gpt-oss', 'qwen2moe'] as const;
export type Arch = (typeof ARCHES)[number] | (typeof MOE_ARCHES)[number];
/** general.architecture as llama.cpp names it. */
export const ggufArch = (a: Arch): string => (a === 'mixtral' ? 'llama' : a);
export type RopeScalingKind = 'none' | 'linear' | 'yarn' | 'longrope';

export interface Shape {
  dim: number; layers: number; heads: number; kvHeads: number; ffn: number; vocab: number; ctx: number; headDim: number;
  /** MoE: experts per layer, experts per token, one expert's FFN width (expertFfn 0: the family uses ffn). 0 for dense families. */
  experts: number; expertsUsed: number; expertFfn: number;
  /** Qwen2-MoE: the shared expert's FFN width (expert_shared_feed_forward_length; 0: not written, llama.cpp uses ffn). 0 elsewhere. */
  sharedFfn: number;
}

export interface FamilySpec {
  /** Tiny test shape; `tinyK` replaces fields for k-quants (rows that are multiples of 256). */
  tiny: Shape;
  tinyK: Partial<Shape>;
  /** Layout defaults for every shape (what the converter writes for the family's real models), then for the tiny shape. */
  defaults?: Partial<Layout>;
  tinyExtra?: Partial<Layout>;
  eps: number;
  /** rope.freq_base the converter writes; undefined: not written (Gemma, Gemma 2: llama.cpp's default 10000). */
  ropeBase: number | undefined;
  /** llama.cpp sizes q as heads × attention.key_length (otherwise as dim: head size must be dim/heads). */
  headDimFree: boolean;
  /** attention.key_length/value_length always written (the HF config has head_dim). */
  keyLength: boolean;
  /** LlamaModel subclasses write vocab_size and rope.dimension_count. */
  llamaKeys: boolean;
  tied: 'always' | 'never' | 'optional';
  scalings: RopeScalingKind[];
  ropeFreqs: boolean;
  qkvBias?: boolean;
  fusedQkv?: boolean;
  fusedGateUp?: boolean;
  qkNorm?: 'head' | 'full';
  preNorm: boolean;
  postNorm?: boolean;
  /** Input embeddings × sqrt(dim) (Gemma): the init divides them back. */
  embedSqrtDim?: boolean;
  /**
   * MoE layers: whether the converter writes expert_feed_forward_length (else the experts are ffn wide);
   * shared: a shared expert (Qwen2-MoE: ffn_gate_inp_shexp [dim] and a dense ffn_{gate,up,down}_shexp FFN).
   */
  moe?: { expertFfnKey: boolean; shared?: boolean };
  /**
   * gpt-oss: attention sinks and attn_output.bias, biases on the router and on every expert tensor, and
   * the FFN pre-norm named post_attention_norm (llama.cpp's openai-moe loader).
   */
  oai?: boolean;
}

const tiny = (s: Partial<Shape> = {}): Shape => ({ dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 512, ctx: 256, headDim: 16, experts: 0, expertsUsed: 0, expertFfn: 0, sharedFfn: 0, ...s });
const K = { dim: 256, ffn: 512, headDim: 64 };
const K_WIDE_HEAD = { dim: 256, ffn: 512, headDim: 128 };
const BASE_SCALINGS: RopeScalingKind[] = ['none', 'linear', 'yarn'];

/** Granite's multipliers (fixed; Granite 3.x uses 12 / 0.22 / 8 and 1/head_dim): non-trivial and balanced for random weights. */
export const GRANITE = { embeddingScale: 6, residualScale: 0.5, logitScale: 4 };

export const FAMILIES: Readonly<Record<Arch, FamilySpec>> = {
  llama: {
    tiny: tiny(), tinyK: K, eps: 1e-5, ropeBase: 10000, headDimFree: true, keyLength: false, llamaKeys: true, tied: 'optional',
    scalings: [...BASE_SCALINGS, 'longrope'], ropeFreqs: true, preNorm: true,
  },
  qwen2: { tiny: tiny(), tinyK: K, eps: 1e-6, ropeBase: 1e6, headDimFree: false, keyLength: false, llamaKeys: false, tied: 'optional', scalings: BASE_SCALINGS, ropeFreqs: false, qkvBias: true, preNorm: true },
  qwen3: {
    tiny: tiny({ headDim: 32 }), tinyK: K_WIDE_HEAD, tinyExtra: { tied: true }, eps: 1e-6, ropeBase: 1e6, headDimFree: true, keyLength: true, llamaKeys: false,
    tied: 'optional', scalings: BASE_SCALINGS, ropeFreqs: false, qkNorm: 'head', preNorm: true,
  },
  gemma: {
    tiny: tiny({ kvHeads: 1, headDim: 32 }), tinyK: K_WIDE_HEAD, eps: 1e-6, ropeBase: undefined, headDimFree: true, keyLength: true, llamaKeys: false,
    tied: 'always', scalings: ['none'], ropeFreqs: false, preNorm: true, embedSqrtDim: true,
  },
  gemma2: {
    tiny: tiny({ headDim: 32 }), tinyK: K_WIDE_HEAD, defaults: { slidingWindow: 4096, attnSoftcap: 50, finalSoftcap: 30 },
    tinyExtra: { slidingWindow: 16, attnSoftcap: 10, finalSoftcap: 60 }, eps: 1e-6, ropeBase: undefined,
    headDimFree: true, keyLength: true, llamaKeys: false, tied: 'always', scalings: ['none'], ropeFreqs: false, preNorm: true, postNorm: true, embedSqrtDim: true,
  },
  gemma3: {
    tiny: tiny({ layers: 4, headDim: 32 }), tinyK: K_WIDE_HEAD, defaults: { slidingWindow: 512, ropeBaseSwa: 10000 },
    tinyExtra: { slidingWindow: 16, swaPattern: 2 }, eps: 1e-6, ropeBase: 1e6,
    headDimFree: true, keyLength: true, llamaKeys: false, tied: 'always', scalings: BASE_SCALINGS, ropeFreqs: false, qkNorm: 'head', preNorm: true,
    postNorm: true, embedSqrtDim: true,
  },
  phi3: {
    tiny: tiny(), tinyK: K, defaults: { slidingWindow: 2047 }, tinyExtra: { slidingWindow: 16 }, eps: 1e-5, ropeBase: 10000, headDimFree: false, keyLength: false, llamaKeys: false,
    tied: 'optional', scalings: ['none', 'longrope'], ropeFreqs: false, fusedQkv: true, fusedGateUp: true, preNorm: true,
  },
  granite: {
    tiny: tiny(), tinyK: K, tinyExtra: { tied: true }, eps: 1e-5, ropeBase: 10000, headDimFree: false, keyLength: false, llamaKeys: true, tied: 'optional',
    scalings: BASE_SCALINGS, ropeFreqs: true, preNorm: true,
  },
  smollm3: {
    tiny: tiny({ layers: 4 }), tinyK: K, tinyExtra: { tied: true }, eps: 1e-6, ropeBase: 5e6, headDimFree: true, keyLength: false, llamaKeys: true,
    tied: 'optional', scalings: BASE_SCALINGS, ropeFreqs: false, preNorm: true,
  },
  olmo2: {
    tiny: tiny(), tinyK: K, eps: 1e-6, ropeBase: 500000, headDimFree: false, keyLength: false, llamaKeys: false, tied: 'never', scalings: BASE_SCALINGS,
    ropeFreqs: false, qkNorm: 'full', preNorm: false, postNorm: true,
  },
  // MoE (tiny: 8 or 4 experts; k-quant shapes keep every expert row a multiple of 256).
  qwen3moe: {
    tiny: tiny({ headDim: 32, ffn: 256, experts: 8, expertsUsed: 2, expertFfn: 64 }), tinyK: { ...K_WIDE_HEAD, expertFfn: 256 }, eps: 1e-6, ropeBase: 1e6,
    headDimFree: true, keyLength: true, llamaKeys: false, tied: 'optional', scalings: BASE_SCALINGS, ropeFreqs: false, qkNorm: 'head', preNorm: true,
    moe: { expertFfnKey: true },
  },
  mixtral: {
    tiny: tiny({ experts: 4, expertsUsed: 2 }), tinyK: { ...K, ffn: 256 }, eps: 1e-5, ropeBase: 1e6, headDimFree: true, keyLength: false, llamaKeys: true,
    tied: 'optional', scalings: BASE_SCALINGS, ropeFreqs: false, preNorm: true, moe: { expertFfnKey: false },
  },
  // gpt-oss-20b: 32 experts top-4, window 128 on even layers, head size 64, rope base 150000 (YaRN ×32 from 4096 in the real file).
  'gpt-oss': {
    tiny: tiny({ headDim: 32, ffn: 64, experts: 8, expertsUsed: 4, expertFfn: 64 }), tinyK: { ...K_WIDE_HEAD, ffn: 256, expertFfn: 256 }, defaults: { slidingWindow: 128 },
    tinyExtra: { slidingWindow: 8 }, eps: 1e-5, ropeBase: 150000, headDimFree: true, keyLength: true, llamaKeys: false, tied: 'never',
    scalings: ['none', 'yarn'], ropeFreqs: false, qkvBias: true, preNorm: true, moe: { expertFfnKey: true }, oai: true,
  },
  // Qwen1.5-MoE-A2.7B: 60 experts top-4 (FFN 1408), a shared expert of 5632, q/k/v biases; llama.cpp requires output.weight.
  // Tiny: the three FFN widths differ (expert 64, shared 96, ffn 128) so a mix-up shows.
  qwen2moe: {
    tiny: tiny({ experts: 8, expertsUsed: 4, expertFfn: 64, sharedFfn: 96 }), tinyK: { ...K, expertFfn: 256, sharedFfn: 768 }, eps: 1e-6, ropeBase: 1e6,
    headDimFree: false, keyLength: false, llamaKeys: false, tied: 'never', scalings: BASE_SCALINGS, ropeFreqs: false, qkvBias: true, preNorm: true,
    moe: { expertFfnKey: true, shared: true },
  },
  olmoe: {
    tiny: tiny({ kvHeads: 4, ffn: 64, experts: 8, expertsUsed: 3 }), tinyK: { ...K, ffn: 256 }, eps: 1e-5, ropeBase: 10000, headDimFree: false, keyLength: false,
    llamaKeys: false, tied: 'never', scalings: BASE_SCALINGS, ropeFreqs: false, qkNorm: 'full', preNorm: true, moe: { expertFfnKey: false },
  },
};

/** Everything about a model besides its shape, resolved. */
export interface Layout {
  tied: boolean;
  /** Write attention.key_length/value_length. */
  keyLength: boolean;
  eps: number;
  ropeBase: number | undefined;
  ropeBaseSwa: number | undefined;
  ropeScaling: RopeScalingKind;
  ropeFactor: number;
  ropeOrigCtx: number;
  ropeFreqs: boolean;
  slidingWindow: number | undefined;
  /** A period (u32), or 0: not written. OLMo2 writes its per-layer bool array instead. */
  swaPattern: number;
  attnSoftcap: number | undefined;
  finalSoftcap: number | undefined;
  init: 'flat' | 'wide';
  /** flat: std of every matrix. */
  std: number;
  /** wide: target std of the logits over the vocabulary. */
  logitStd: number;
}

/** A tensor to write: a matrix filled by row blocks of a given std, or an f32 vector. */
export interface Planned {
  name: string;
  dims: number[];
  /** Quantization role (make-model's type mix). */
  role: string;
  layer: number;
  rows?: { rows: number; std: number }[];
  vec?: { center: number; spread: number } | { values: Float32Array } | 'legacyNorm';
}

/** Target std of q·k·scale for random q and k (no q/k norm): attention that depends on content and position. */
const SCORE_STD = 2;

/** Llama 3's rope_freqs (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors, rope_type llama3). */
export function llama3RopeFreqs(ropeDim: number, base: number, factor: number, origCtx: number, lowFreq = 1, highFreq = 4): Float32Array {
  const out = new Float32Array(ropeDim / 2);
  const low = origCtx / lowFreq;
  const high = origCtx / highFreq;
  for (let i = 0; i < out.length; i++) {
    const freq = 1 / base ** ((2 * i) / ropeDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < high) out[i] = 1;
    else if (wavelen > low) out[i] = factor;
    else {
      const smooth = (origCtx / wavelen - lowFreq) / (highFreq - lowFreq);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/** Synthetic LongRoPE factors (Phi-3.5's shape: short ≈ 1…1.5, long rising to ≈ scale^1.2). */
export function longRopeFactors(ropeDim: number, scale: number): { long: Float32Array; short: Float32Array } {
  const n = ropeDim / 2;
  const t = (i: number) => (n > 1 ? i / (n - 1) : 0);
  return {
    long: Float32Array.from({ length: n }, (_, i) => Math.max(1, scale) ** (1.2 * t(i))),
    short: Float32Array.from({ length: n }, (_, i) => 1 + 0.5 * t(i) ** 2),
  };
}

/** LongRoPE's magnitude correction, as the Phi-3 converter computes it. */
export const longRopeAttnFactor = (ctx: number, orig: number) => (ctx > orig ? Math.sqrt(1 + Math.log(ctx / orig) / Math.log(orig)) : 1);

/** The {arch}.* metadata keys, in one fixed order (the legacy llama order is a subsequence of it). */
export function familyKeys(arch: Arch, s: Shape, l: Layout): GgufKV[] {
  const f = FAMILIES[arch];
  const a = (k: string) => `${ggufArch(arch)}.${k}`;
  const out: GgufKV[] = [
    kv.u32(a('context_length'), s.ctx), kv.u32(a('embedding_length'), s.dim), kv.u32(a('block_count'), s.layers),
    kv.u32(a('feed_forward_length'), s.ffn), kv.u32(a('attention.head_count'), s.heads), kv.u32(a('attention.head_count_kv'), s.kvHeads),
    kv.f32(a('attention.layer_norm_rms_epsilon'), l.eps),
  ];
  if (l.keyLength) out.push(kv.u32(a('attention.key_length'), s.headDim), kv.u32(a('attention.value_length'), s.headDim));
  if (f.llamaKeys || arch === 'phi3') out.push(kv.u32(a('rope.dimension_count'), s.headDim));
  if (l.ropeBase !== undefined) out.push(kv.f32(a('rope.freq_base'), l.ropeBase));
  if (l.ropeBaseSwa !== undefined) out.push(kv.f32(a('rope.freq_base_swa'), l.ropeBaseSwa));
  if (l.ropeScaling === 'linear' || l.ropeScaling === 'yarn') out.push(kv.str(a('rope.scaling.type'), l.ropeScaling), kv.f32(a('rope.scaling.factor'), l.ropeFactor));
  // Phi-3's converter never writes rope.scaling.type: llama.cpp picks long/short factors by context alone.
  if (l.ropeScaling === 'longrope' && arch !== 'phi3') out.push(kv.str(a('rope.scaling.type'), 'longrope'));
  if (l.ropeScaling === 'yarn' || l.ropeScaling === 'longrope' || arch === 'phi3') out.push(kv.u32(a('rope.scaling.original_context_length'), l.ropeOrigCtx));
  if (l.ropeScaling === 'longrope') out.push(kv.f32(a('rope.scaling.attn_factor'), longRopeAttnFactor(s.ctx, l.ropeOrigCtx)));
  if (arch === 'phi3') out.push(kv.u32(a('attention.sliding_window'), l.slidingWindow ?? 0));
  else if (l.slidingWindow !== undefined) out.push(kv.u32(a('attention.sliding_window'), l.slidingWindow));
  if (arch === 'olmo2' && l.slidingWindow !== undefined) {
    // Olmo3: every 4th layer is full attention (convert_hf_to_gguf.py Olmo2Model).
    out.push(kv.array(a('attention.sliding_window_pattern'), GgufValueType.BOOL, Array.from({ length: s.layers }, (_, i) => (i + 1) % 4 !== 0)));
  } else if (l.swaPattern > 0) out.push(kv.u32(a('attention.sliding_window_pattern'), l.swaPattern));
  if (l.attnSoftcap !== undefined) out.push(kv.f32(a('attn_logit_softcapping'), l.attnSoftcap));
  if (l.finalSoftcap !== undefined) out.push(kv.f32(a('final_logit_softcapping'), l.finalSoftcap));
  if (arch === 'granite') {
    out.push(kv.f32(a('attention.scale'), 1 / s.headDim), kv.f32(a('embedding_scale'), GRANITE.embeddingScale));
    out.push(kv.f32(a('residual_scale'), GRANITE.residualScale), kv.f32(a('logit_scale'), GRANITE.logitScale));
  }
  if (f.llamaKeys) out.push(kv.u32(a('vocab_size'), s.vocab));
  if (f.moe) {
    out.push(kv.u32(a('expert_count'), s.experts), kv.u32(a('expert_used_count'), s.expertsUsed));
    if (f.moe.expertFfnKey) out.push(kv.u32(a('expert_feed_forward_length'), s.expertFfn));
    if (f.moe.shared && s.sharedFfn) out.push(kv.u32(a('expert_shared_feed_forward_length'), s.sharedFfn));
  }
  return out;
}

/**
 * The tensors, in llama.cpp's creation order, each with its init.
 *
 * 'wide' init (see the top of make-model.ts for why): every matrix has std
 * gain/sqrt(row length), so each projection keeps unit-scale activations;
 * q and k get the gain that makes q·k·scale ≈ N(0, 2²) (unless q/k are
 * normed); the embedding's rms in the residual stream is min(0.25,
 * 1/sqrt(dim)), small next to the branch outputs (~1 each), so a tied output
 * does not just predict the current token again (the first layer sees it
 * normalized anyway); norms are 1 ± 0.25; biases ±0.87 (std 0.5); and the
 * logits get std `logitStd` through the output matrix (untied) or the output
 * norm's weights (tied).
 */
export function familyTensors(arch: Arch, s: Shape, l: Layout): Planned[] {
  const f = FAMILIES[arch];
  const { dim, layers, heads, kvHeads, ffn, vocab, headDim } = s;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const wide = l.init === 'wide';
  const flatStd = l.std;
  const granite = arch === 'granite';
  const attnScale = granite ? 1 / headDim : 1 / Math.sqrt(headDim);
  const qkGain = f.qkNorm ? 1 : Math.sqrt(SCORE_STD / (Math.sqrt(headDim) * attnScale));
  const outGain = granite ? 1 / GRANITE.residualScale : 1;
  // Small next to the branch outputs (rms ~1 each), and smaller with dim: a tied output then does not just repeat the
  // current token (its own logit is ~ share of the residual × sqrt(dim) × logitStd).
  const embStd = Math.min(0.25, 1 / Math.sqrt(dim)) / (f.embedSqrtDim ? Math.sqrt(dim) : 1) / (granite ? GRANITE.embeddingScale : 1);
  const logitDiv = granite ? GRANITE.logitScale : 1;
  const std = (gain: number, cols: number) => (wide ? gain / Math.sqrt(cols) : flatStd);
  const norm = () => (wide ? { center: 1, spread: 0.25 } : ('legacyNorm' as const));
  const bias = () => (wide ? { center: 0, spread: 0.5 * Math.sqrt(3) } : { center: 0, spread: flatStd * Math.sqrt(3) });

  const out: Planned[] = [];
  const mat = (name: string, role: string, layer: number, cols: number, rows: [number, number][]) =>
    out.push({ name, role, layer, dims: [cols, rows.reduce((a, [r]) => a + r, 0)], rows: rows.map(([r, g]) => ({ rows: r, std: std(g, cols) })) });
  const vec = (name: string, n: number, v: Planned['vec']) => out.push({ name, role: 'vector', layer: -1, dims: [n], vec: v });

  if (l.ropeFreqs) vec(tensorNames.rope_freqs, headDim / 2, { values: llama3RopeFreqs(headDim, l.ropeBase ?? 10000, l.ropeFactor, l.ropeOrigCtx) });
  if (l.ropeScaling === 'longrope') {
    const { long, short } = longRopeFactors(headDim, s.ctx / l.ropeOrigCtx);
    vec(tensorNames.rope_factors_long, headDim / 2, { values: long });
    vec(tensorNames.rope_factors_short, headDim / 2, { values: short });
  }
  out.push({ name: tensorNames.token_embd, role: l.tied ? 'output' : 'token_embd', layer: -1, dims: [dim, vocab], rows: [{ rows: vocab, std: wide ? embStd : flatStd }] });
  for (let i = 0; i < layers; i++) {
    const n = tensorNames.layer(i);
    if (f.preNorm) vec(n.attn_norm, dim, norm());
    if (f.fusedQkv) {
      mat(n.attn_qkv, 'attn_v', i, dim, [[qDim, qkGain], [kvDim, qkGain], [kvDim, 1]]);
    } else {
      mat(n.attn_q, 'attn_q', i, dim, [[qDim, qkGain]]);
      if (f.qkvBias) vec(n.attn_q_bias, qDim, bias());
      mat(n.attn_k, 'attn_k', i, dim, [[kvDim, qkGain]]);
      if (f.qkvBias) vec(n.attn_k_bias, kvDim, bias());
      mat(n.attn_v, 'attn_v', i, dim, [[kvDim, 1]]);
      if (f.qkvBias) vec(n.attn_v_bias, kvDim, bias());
    }
    mat(n.attn_output, 'attn_output', i, qDim, [[dim, outGain]]);
    if (f.oai) {
      vec(n.attn_output_bias, dim, bias());
      // Sinks: logits that compete with the scores (std ~2 here), so they move the attention weights.
      vec(n.attn_sinks, heads, wide ? { center: 1, spread: 2 } : bias());
    }
    if (f.qkNorm) {
      vec(n.attn_q_norm, f.qkNorm === 'head' ? headDim : qDim, norm());
      vec(n.attn_k_norm, f.qkNorm === 'head' ? headDim : kvDim, norm());
    }
    if (f.postNorm) vec(n.attn_post_norm, dim, norm());
    if (f.preNorm) vec(f.oai ? n.attn_post_norm : n.ffn_norm, dim, norm());
    if (f.moe) {
      // The router (F32, as llama.cpp's quantizer keeps it) with logits of std 2, so the choice depends on the token;
      // then the experts, [experts][rows][cols] one after another, each initialised like a dense FFN.
      const ff = f.moe.expertFfnKey ? s.expertFfn : ffn, E = s.experts;
      out.push({ name: n.ffn_gate_inp, role: 'router', layer: i, dims: [dim, E], rows: [{ rows: E, std: std(2, dim) }] });
      if (f.oai) out.push({ name: n.ffn_gate_inp_bias, role: 'vector', layer: -1, dims: [E], vec: bias() });
      for (const [name, cols, rows, b] of [[n.ffn_gate_exps, dim, ff, n.ffn_gate_exps_bias], [n.ffn_up_exps, dim, ff, n.ffn_up_exps_bias], [n.ffn_down_exps, ff, dim, n.ffn_down_exps_bias]] as const) {
        const role = name === n.ffn_down_exps ? 'ffn_down_exps' : 'ffn_exps';
        out.push({ name, role, layer: i, dims: [cols, rows, E], rows: [{ rows: rows * E, std: std(name === n.ffn_down_exps ? outGain : 1, cols) }] });
        // gpt-oss: one bias row per expert, ggml dims [rows, experts].
        if (f.oai) out.push({ name: b, role: 'vector', layer: -1, dims: [rows, E], vec: bias() });
      }
      if (f.moe.shared) {
        // The shared expert's gate (one F32 row, kept F32 like the router: logits of std 2, so σ spans most of (0, 1)),
        // then its dense FFN, in llama.cpp's creation order.
        const sf = s.sharedFfn || ffn;
        out.push({ name: n.ffn_gate_inp_shexp, role: 'router', layer: i, dims: [dim], rows: [{ rows: 1, std: std(2, dim) }] });
        mat(n.ffn_gate_shexp, 'ffn_gate', i, dim, [[sf, 1]]);
        mat(n.ffn_down_shexp, 'ffn_down', i, sf, [[dim, outGain]]);
        mat(n.ffn_up_shexp, 'ffn_up', i, dim, [[sf, 1]]);
      }
    } else if (f.fusedGateUp) {
      mat(n.ffn_up, 'ffn_up', i, dim, [[2 * ffn, 1]]);
    } else {
      mat(n.ffn_gate, 'ffn_gate', i, dim, [[ffn, 1]]);
      mat(n.ffn_up, 'ffn_up', i, dim, [[ffn, 1]]);
    }
    if (!f.moe) mat(n.ffn_down, 'ffn_down', i, ffn, [[dim, outGain]]);
    if (f.postNorm) vec(n.ffn_post_norm, dim, norm());
  }
  // Logits = (output_norm ∘ n(h)) · W: std ≈ |output_norm| · std(W) · sqrt(dim), then ÷ Granite's logit_scale.
  const g = wide && l.tied ? (l.logitStd * logitDiv) / (embStd * Math.sqrt(dim)) : 1;
  vec(tensorNames.output_norm, dim, wide ? { center: g, spread: 0.25 * g } : 'legacyNorm');
  if (!l.tied) out.push({ name: tensorNames.output, role: 'output', layer: -1, dims: [dim, vocab], rows: [{ rows: vocab, std: wide ? (l.logitStd * logitDiv) / Math.sqrt(dim) : flatStd }] });
  return out;
}

/** Rejects layouts llama.cpp would refuse or the converter never writes. */
export function checkLayout(arch: Arch, s: Shape, l: Layout): void {
  const f = FAMILIES[arch];
  if (!f.headDimFree && s.headDim * s.heads !== s.dim) throw new UsageError(`--arch ${arch} needs head size dim/heads (${s.dim}/${s.heads}); llama.cpp sizes its q by dim: drop --head-dim`);
  if (f.tied === 'always' && !l.tied) throw new UsageError(`--arch ${arch} always ties the output to token_embd (llama.cpp loads no output.weight): drop --untied`);
  if (f.tied === 'never' && l.tied) throw new UsageError(`--arch ${arch} needs output.weight (llama.cpp requires it): drop --tied`);
  if (f.moe && !(s.experts >= 1 && s.expertsUsed >= 1 && s.expertsUsed <= Math.min(s.experts, 32))) {
    throw new UsageError(`--experts ${s.experts} --experts-used ${s.expertsUsed}: ${arch} needs at least one expert and 1..min(experts, 32) used per token`);
  }
  if (f.moe?.expertFfnKey && !(s.expertFfn >= 1)) throw new UsageError(`--expert-ffn ${s.expertFfn} must be positive for ${arch}`);
  if (!f.moe && (s.experts || s.expertsUsed || s.expertFfn)) throw new UsageError(`--experts, --experts-used and --expert-ffn apply to ${MOE_ARCHES.join(', ')}, not ${arch}`);
  if (!f.moe?.shared && s.sharedFfn) throw new UsageError(`--shared-ffn applies to ${MOE_ARCHES.filter((a) => FAMILIES[a].moe?.shared).join(', ')}, not ${arch}`);
  // llama.cpp's OLMoE loader sizes attn_k_norm by dim (OLMoE has no GQA).
  if (arch === 'olmoe' && s.kvHeads !== s.heads) throw new UsageError(`--arch olmoe needs --kv-heads equal to --heads (${s.heads}): llama.cpp sizes its k norm by dim`);
  if (!f.scalings.includes(l.ropeScaling)) throw new UsageError(`--rope-scaling ${l.ropeScaling} is not written for --arch ${arch}: use one of ${f.scalings.join(', ')}`);
  if (l.ropeFreqs && !f.ropeFreqs) throw new UsageError(`--rope-freqs: llama.cpp's ${arch} loader has no rope_freqs tensor (only llama and granite)`);
  if (l.ropeFreqs && l.ropeScaling === 'longrope') throw new UsageError('--rope-freqs and --rope-scaling longrope exclude each other (llama.cpp loads one or the other)');
  if ((l.ropeScaling === 'yarn' || l.ropeScaling === 'longrope') && !(l.ropeOrigCtx >= 1 && l.ropeOrigCtx <= s.ctx)) {
    throw new UsageError(`--rope-orig-ctx ${l.ropeOrigCtx} must be between 1 and the context length ${s.ctx}`);
  }
  if (!(l.ropeFactor > 0)) throw new UsageError(`--rope-factor ${l.ropeFactor} must be positive`);
  if (l.slidingWindow !== undefined && !['gemma2', 'gemma3', 'phi3', 'olmo2', 'gpt-oss'].includes(arch)) throw new UsageError(`--sliding-window: llama.cpp's ${arch} has no sliding-window attention`);
  if (l.swaPattern > 0 && arch !== 'gemma2' && arch !== 'gemma3') throw new UsageError(`--swa-pattern applies to gemma2 and gemma3, not ${arch}`);
  if (l.attnSoftcap !== undefined && arch !== 'gemma2') throw new UsageError('--attn-softcap applies to gemma2 only');
  if (l.finalSoftcap !== undefined && arch !== 'gemma2' && arch !== 'gemma3') throw new UsageError('--final-softcap applies to gemma2 and gemma3 only');
}
