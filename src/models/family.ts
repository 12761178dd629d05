// The model families qllm runs, and each one's differences from Llama, in
// one table: llama.cpp's per-architecture graph builders (src/models/*.cpp)
// and hparam loaders reduced to data. planModel() resolves a Config against
// its family into a Plan: one record per layer that the forward pass
// (src/models/llama.ts) reads top to bottom. Nothing here knows GGUF key
// spellings (config.ts does); this file knows what llama.cpp does with them.
import { type Config, tensorNames } from '../config.ts';
import { GgufError, printable } from '../errors.ts';
import type { Gating } from '../gpu/router.ts';

export interface Family {
  /** 'norm': rotate adjacent pairs (2i, 2i+1); 'neox': pairs (i, i + ropeDim/2). */
  rope: 'norm' | 'neox';
  /** The gated FFN's activation on the gate: silu (SwiGLU) or GELU-tanh (GeGLU). */
  act: 'silu' | 'gelu';
  /** Embeddings × sqrt(dim) (Gemma). Granite's embedding_scale comes from the Config instead. */
  embedSqrtDim?: boolean;
  /** RMSNorm of q and k before RoPE: per head (weight [headDim]) or over the whole vector (OLMo2, [heads·headDim]). */
  qkNorm?: 'head' | 'full';
  /** Norms before attention and FFN (attn_norm, ffn_norm). OLMo2 has none. Default true. */
  preNorm?: boolean;
  /** attn_post_norm and ffn_post_norm on the branch outputs before the residual add (Gemma 2/3, OLMo2). */
  postNorm?: boolean;
  /** Sliding-window layers: a default window and period when the file names none, as llama.cpp's loader sets them. */
  swa?: { window?: number; period: number; onlyWithWindow?: boolean; required?: boolean };
  /** RoPE of sliding-window layers: 'train' reuses the global base and scale (Gemma 2); 'base' keeps a base of its own and no scaling (Gemma 3, OLMo2). */
  swaRope?: 'train' | 'base';
  /** Attention soft-capping (Gemma 2: llama.cpp's default 50 when the key is absent). */
  attnSoftcapDefault?: number;
  /** Final-logit soft-capping: Gemma 2 always (default 30); Gemma 3 only when the key is set. */
  finalSoftcap?: 'always' | 'ifSet';
  /** Gemma 2/3's attention scale rule: 1/sqrt(dim/heads) for the 27B models, else 1/sqrt(headDim). */
  gemmaScale?: { layers27b: number };
  /** Every n-th layer (1-based) has no RoPE (SmolLM3: 4). */
  noRopeEvery?: number;
  /** Reads attention.scale, embedding_scale, residual_scale and logit_scale (Granite). */
  scales?: boolean;
  /** rope.scaling.finetuned = false switches RoPE off on every layer (Granite). */
  ropeSwitch?: boolean;
  /** A mixture-of-experts FFN on every layer (MoeRule); absent: dense. */
  moe?: MoeRule;
  /** gpt-oss: a learned logit per head (attn_sinks) joins every softmax of the attention, and attn_output has a bias. */
  sinks?: boolean;
  /** The FFN's pre-norm is post_attention_norm (gpt-oss names its ffn_norm so). */
  ffnNormIsPostAttn?: boolean;
  /** output.weight is required: llama.cpp's loader for the family has no tied fallback (OLMo2, OLMoE, gpt-oss, Qwen2-MoE). */
  outputRequired?: boolean;
}

/**
 * The arguments a family's graph passes to llama.cpp's build_moe_ffn: the
 * gating, whether the k weights are renormalised (norm_w), and where one
 * expert's FFN width comes from: 'ffn' feed_forward_length (Mixtral, OLMoE),
 * 'expert' expert_feed_forward_length, 'expertOrSplit' that or
 * feed_forward_length / expert_used_count (Qwen2/3-MoE). `ifExperts`: MoE only
 * when the file sets expert_count (llama: Mixtral; dense otherwise). `shared`:
 * Qwen2-MoE's one shared expert (see MoePlan.sharedFf). No family here reads
 * expert_weights_scale/norm/gating_func or expert_shared_count (qwen2moe's
 * loader ignores the count: one shared expert); a family without `shared`
 * refuses a file that sets shared experts, and every family refuses expert
 * groups (DeepSeek).
 */
export interface MoeRule {
  gating: Gating;
  norm: boolean;
  ff: 'ffn' | 'expert' | 'expertOrSplit';
  ifExperts?: boolean;
  /** gpt-oss: biases on the router and on every expert product (ggml_add_id), and SwiGLU-OAI (clamped, alpha 1.702, limit 7). */
  oai?: boolean;
  /** Qwen2-MoE: a shared expert beside the routed ones, width expert_shared_feed_forward_length or feed_forward_length. */
  shared?: boolean;
}

/** A MoE layer as this file sets it (Plan.moe). */
export interface MoePlan {
  experts: number;
  /** Experts per token (top-k). */
  used: number;
  /** One expert's FFN width. */
  ff: number;
  gating: Gating;
  normalize: boolean;
  oai: boolean;
  /**
   * The shared expert's FFN width (0: none). Qwen2-MoE (llama.cpp's
   * qwen2moe.cpp): every token also runs a dense SwiGLU FFN (ffn_gate_shexp,
   * ffn_up_shexp [sharedFf, dim], ffn_down_shexp [dim, sharedFf]) on the same
   * normed input xn, scaled by σ(ffn_gate_inp_shexp · xn) (one logit a
   * token, weight [dim]) and added to the routed experts' sum.
   */
  sharedFf: number;
}

/** The families, as llama.cpp's builders compute them (src/models/<arch>.cpp). */
export const FAMILIES: Readonly<Record<string, Family>> = {
  // also Mistral, SmolLM2, TinyLlama; Mixtral when expert_count is set
  llama: { rope: 'norm', act: 'silu', moe: { gating: 'softmax', norm: true, ff: 'ffn', ifExperts: true } },
  qwen2: { rope: 'neox', act: 'silu' },
  qwen3: { rope: 'neox', act: 'silu', qkNorm: 'head' },
  gemma: { rope: 'neox', act: 'gelu', embedSqrtDim: true },
  gemma2: {
    rope: 'neox', act: 'gelu', embedSqrtDim: true, postNorm: true, swa: { window: 4096, period: 2 }, swaRope: 'train',
    attnSoftcapDefault: 50, finalSoftcap: 'always', gemmaScale: { layers27b: 46 },
  },
  gemma3: {
    rope: 'neox', act: 'gelu', embedSqrtDim: true, qkNorm: 'head', postNorm: true, swa: { period: 6, onlyWithWindow: true }, swaRope: 'base',
    finalSoftcap: 'ifSet', gemmaScale: { layers27b: 62 },
  },
  phi3: { rope: 'neox', act: 'silu' }, // no swa: llama.cpp ignores Phi-3's sliding_window ("Phi SWA is currently disabled")
  granite: { rope: 'norm', act: 'silu', scales: true, ropeSwitch: true },
  smollm3: { rope: 'norm', act: 'silu', noRopeEvery: 4 },
  olmo2: { rope: 'neox', act: 'silu', qkNorm: 'full', preNorm: false, postNorm: true, swa: { period: 4, onlyWithWindow: true }, swaRope: 'base', outputRequired: true },
  // Qwen1.5-MoE, Qwen2-57B-A14B: Qwen2's attention (q/k/v biases), softmax top-k without renormalising, and a shared expert.
  qwen2moe: { rope: 'neox', act: 'silu', moe: { gating: 'softmax', norm: false, ff: 'expertOrSplit', shared: true }, outputRequired: true },
  qwen3moe: { rope: 'neox', act: 'silu', qkNorm: 'head', moe: { gating: 'softmax', norm: true, ff: 'expertOrSplit' } },
  olmoe: { rope: 'neox', act: 'silu', qkNorm: 'full', moe: { gating: 'softmax', norm: false, ff: 'ffn' }, outputRequired: true },
  // llama.cpp's openai-moe: sliding window on even layers (period 2, the file's window), sinks, YaRN from the file.
  'gpt-oss': {
    rope: 'neox', act: 'silu', swa: { period: 2, required: true }, sinks: true, ffnNormIsPostAttn: true,
    moe: { gating: 'softmax_weight', norm: false, ff: 'expert', oai: true }, outputRequired: true,
  },
};

/** Angles of one RoPE table (ggml's rope_yarn inputs). */
export interface RopeParams {
  base: number;
  /** Angles × freqScale (1/linear factor). */
  freqScale: number;
  /** YaRN's ramp between interpolated and extrapolated angles (0 = off). */
  extFactor: number;
  /** cos and sin × attnFactor (YaRN's and LongRoPE's magnitude correction). */
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
  /** Context the model was trained at before scaling (YaRN's correction dims). */
  origContext: number;
  /** Which per-pair divisor tensor applies: rope_freqs (Llama 3), rope_factors_long/short (LongRoPE), or none. */
  factors: 'freqs' | 'long' | 'short' | 'none';
}

export interface LayerPlan {
  /** RoPE of this layer (an index into Plan.ropes), or -1: no RoPE (SmolLM3's NoPE layers). */
  rope: number;
  /** Sliding window in tokens (0: attends to every earlier position). */
  window: number;
}

export interface Plan {
  arch: string;
  family: Family;
  /** Embedding multiplier (1: none). */
  embedScale: number;
  /** q·k scale. */
  attnScale: number;
  /** 0: off. */
  attnSoftcap: number;
  /** Multiplier on the branch outputs before the residual add (Granite's residual_scale; 1: none). */
  residualScale: number;
  /** Logits × logitScale, then soft-capped when finalSoftcap > 0. */
  logitScale: number;
  finalSoftcap: number;
  /** Distinct RoPE tables; layers index them. */
  ropes: RopeParams[];
  layers: LayerPlan[];
  /** The mixture of experts every layer's FFN is (undefined: dense). */
  moe?: MoePlan;
}

export const SUPPORTED_ARCHS: readonly string[] = Object.keys(FAMILIES);

/**
 * Resolves the family's rules and the file's values into one record per layer.
 * has(name): whether the file holds that tensor (the RoPE divisors decide the tables).
 */
export function planModel(c: Config, contextLength: number, has: (tensor: string) => boolean, where: string): Plan {
  const f = FAMILIES[c.arch];
  if (!f) {
    throw new GgufError(`architecture '${printable(c.arch)}' is not supported: qllm runs ${SUPPORTED_ARCHS.join(', ')} (Mistral, Mixtral, SmolLM2 and TinyLlama files say 'llama')`);
  }
  // Which layers slide (llama.cpp's hparams.set_swa_pattern, dense_first = false).
  let window = 0;
  let swaLayer = (_il: number) => false;
  // A family without `swa` ignores attention.sliding_window, as llama.cpp's loader does.
  if (f.swa?.required && !c.slidingWindow) throw new GgufError(`metadata key ${printable(c.arch)}.attention.sliding_window is missing or 0 in ${where}: a '${printable(c.arch)}' model has sliding-window layers; re-convert the model`);
  if (f.swa && !(f.swa.onlyWithWindow && !c.slidingWindow)) {
    window = c.slidingWindow || f.swa.window || 0;
    // These families read the pattern as one number; an array of per-layer flags leaves the default period.
    const p = typeof c.slidingWindowPattern === 'number' ? c.slidingWindowPattern : f.swa.period;
    swaLayer = (il) => p === 0 || il % p < p - 1;
  }

  const s = c.ropeScaling;
  const type = s.type;
  if (!['none', 'linear', 'yarn', 'longrope'].includes(type)) {
    throw new GgufError(`RoPE scaling '${printable(type)}' in ${where} is not supported: qllm applies linear, yarn and longrope scaling`);
  }
  const freqScale = type === 'none' ? 1 : 1 / s.factor;
  // The YaRN keys (ext_factor, betas, log multiplier) are read by llama.cpp only
  // for other families (DeepSeek 2, Grok…); these use its defaults.
  const ext = type === 'yarn' ? 1 : 0;
  // llama.cpp's context setup (llama-context.cpp): YaRN's attention factor, then the file's attn_factor on top.
  let attnFactor = 1;
  if (ext !== 0) {
    const factor = 1 / freqScale;
    attnFactor = factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1;
    attnFactor *= 1 / (1 + 0.1 * Math.log(factor));
  }
  attnFactor *= s.attnFactor;
  const origContext = s.originalContextLength || c.contextLength;
  // llama_model::get_rope_factors: rope_freqs if present, else LongRoPE's long
  // factors past the original context and short ones within it (whatever
  // rope.scaling.type says: Phi-3 files carry the tensors without the type).
  const longShort = has(tensorNames.rope_factors_long) || has(tensorNames.rope_factors_short);
  const factors: RopeParams['factors'] = has(tensorNames.rope_freqs) ? 'freqs' : longShort ? (contextLength > origContext ? 'long' : 'short') : 'none';
  const global: RopeParams = { base: c.ropeTheta, freqScale, extFactor: ext, attnFactor, betaFast: 32, betaSlow: 1, origContext, factors };
  const ropes = [global];
  let swaRope = 0;
  if (window && c.arch === 'olmo2') {
    // OLMo2's graph keeps the global base on its window layers, unscaled, with no YaRN ramp or magnitude.
    ropes.push({ ...global, freqScale: 1, extFactor: 0, attnFactor: 1 });
    swaRope = 1;
  } else if (window && f.swaRope === 'base') {
    // Gemma 3: a base of their own (default 10000) and no linear scale, but the global YaRN terms.
    ropes.push({ ...global, base: c.ropeBaseSwa ?? 10000, freqScale: 1 });
    swaRope = 1;
  } else if (window && c.ropeBaseSwa !== undefined && c.ropeBaseSwa !== c.ropeTheta) {
    ropes.push({ ...global, base: c.ropeBaseSwa });
    swaRope = 1;
  }

  const layers: LayerPlan[] = [];
  for (let il = 0; il < c.nLayers; il++) {
    const swa = window > 0 && swaLayer(il);
    const nope = (f.noRopeEvery !== undefined && (il + 1) % f.noRopeEvery === 0) || (f.ropeSwitch && c.ropeFinetuned === false);
    layers.push({ rope: nope ? -1 : swa ? swaRope : 0, window: swa ? window : 0 });
  }

  const moe = f.moe && planMoe(c, f.moe, where);
  const gemma27b = f.gemmaScale && c.nLayers === f.gemmaScale.layers27b;
  const attnScale = gemma27b ? 1 / Math.sqrt(c.dim / c.nHeads) : (f.scales && c.attentionScale) || 1 / Math.sqrt(c.headDim);
  const finalSoftcap = f.finalSoftcap === 'always' ? (c.finalSoftcap ?? 30) : f.finalSoftcap === 'ifSet' ? (c.finalSoftcap ?? 0) : 0;
  return {
    arch: c.arch,
    family: f,
    embedScale: f.embedSqrtDim ? Math.sqrt(c.dim) : (f.scales && c.embeddingScale) || 1,
    attnScale,
    attnSoftcap: f.attnSoftcapDefault !== undefined ? (c.attnSoftcap ?? f.attnSoftcapDefault) : 0,
    residualScale: (f.scales && c.residualScale) || 1,
    logitScale: f.scales && c.logitScale ? 1 / c.logitScale : 1,
    finalSoftcap,
    ropes,
    layers,
    moe,
  };
}

/** The family's MoE rule against the file's expert keys (llama.cpp's loader checks, in one line each). */
function planMoe(c: Config, rule: MoeRule, where: string): MoePlan | undefined {
  const experts = c.expertCount || 0, used = c.expertUsedCount || 0;
  if (rule.ifExperts && experts === 0) return undefined;
  const arch = printable(c.arch);
  const bad = (what: string) => new GgufError(`${what} in ${where}: the file is corrupt or not a '${arch}' model`);
  if (experts < 1) throw bad(`${arch}.expert_count is missing or 0 (a '${arch}' model is a mixture of experts)`);
  if (!(used >= 1 && used <= experts)) throw bad(`${arch}.expert_used_count ${used} must be between 1 and expert_count ${experts}`);
  // The GPU router keeps a token's k choices in registers and its E logits in workgroup memory (router.ts).
  if (used > 32 || experts > 65535) throw new GgufError(`top-${used} of ${experts} experts in ${where} is not supported: qllm routes at most 32 of 65535 experts per token`);
  if ((c.expertGroupCount || 0) > 1) throw new GgufError(`expert groups (${arch}.expert_group_count ${c.expertGroupCount}) in ${where} are not supported: qllm does not implement DeepSeek-style group routing`);
  if (!rule.shared && ((c.expertSharedCount || 0) > 0 || (c.expertSharedFfnDim || 0) > 0)) throw new GgufError(`shared experts in ${where} are not supported for '${arch}' models: llama.cpp's '${arch}' graph has none; the file is not a '${arch}' model`);
  const ef = c.expertFfnDim || 0;
  let ff = rule.ff === 'ffn' ? c.ffnDim : ef;
  if (rule.ff === 'expertOrSplit' && !ff) ff = Math.floor(c.ffnDim / used);
  if (!(ff > 0)) throw bad(`${arch}.expert_feed_forward_length is missing or 0`);
  // qwen2moe's loader: n_ff_shexp = expert_shared_feed_forward_length, or n_ff when absent.
  const sharedFf = rule.shared ? c.expertSharedFfnDim || c.ffnDim : 0;
  return { experts, used, ff, gating: rule.gating, normalize: rule.norm, oai: !!rule.oai, sharedFf };
}

/** One line for `qllm info` and the run stats: the family's quirks as this file sets them. */
export function describePlan(p: Plan): string {
  const out: string[] = [`rope ${p.family.rope}`, p.family.act === 'gelu' ? 'GeGLU' : 'SwiGLU'];
  if (p.family.qkNorm) out.push(`q/k norm (${p.family.qkNorm === 'head' ? 'per head' : 'whole vector'})`);
  if (p.family.postNorm) out.push(p.family.preNorm === false ? 'post-norms only' : 'pre- and post-norms');
  const swa = p.layers.filter((l) => l.window > 0);
  if (swa.length) out.push(`sliding window ${swa[0].window} on ${swa.length}/${p.layers.length} layers`);
  const nope = p.layers.filter((l) => l.rope < 0).length;
  if (nope) out.push(`no RoPE on ${nope}/${p.layers.length} layers`);
  if (p.attnSoftcap) out.push(`attention softcap ${p.attnSoftcap}`);
  if (p.finalSoftcap) out.push(`final logit softcap ${p.finalSoftcap}`);
  if (p.embedScale !== 1) out.push(`embedding scale ${+p.embedScale.toPrecision(6)}`);
  if (p.residualScale !== 1) out.push(`residual scale ${p.residualScale}`);
  if (p.logitScale !== 1) out.push(`logit scale 1/${+(1 / p.logitScale).toPrecision(6)}`);
  if (p.moe) out.push(`MoE: top-${p.moe.used} of ${p.moe.experts} experts (FFN ${p.moe.ff} each), ${p.moe.gating} gating${p.moe.normalize ? ', weights renormalised' : ''}${p.moe.oai ? ', expert biases, SwiGLU-OAI (clamp 7)' : ''}${p.moe.sharedFf ? `, plus a shared expert (FFN ${p.moe.sharedFf}) gated by a sigmoid` : ''}`);
  if (p.family.sinks) out.push('attention sinks');
  const r = p.ropes[0];
  if (r.freqScale !== 1 || r.extFactor || r.factors !== 'none') out.push(`rope scaling ${r.extFactor ? 'yarn' : r.factors === 'freqs' ? 'rope_freqs' : r.factors !== 'none' ? `longrope (${r.factors})` : 'linear'}${r.freqScale !== 1 ? ` ×${+(1 / r.freqScale).toPrecision(6)}` : ''}`);
  return out.join(', ');
}
