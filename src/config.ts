// The one place that knows GGUF metadata key spellings. readConfig() turns a
// GgufFile's metadata into a frozen, typed Config; everything else (model,
// tokenizer, info, quantizer) reads Config fields, never raw keys.
import { GgufError, printable } from './errors.ts';
import type { GgufArray, GgufFile, GgufValue } from './gguf/types.ts';

export interface RopeScaling {
  /** rope.scaling.type: 'none' | 'linear' | 'yarn' | 'longrope' (llama.cpp's default when absent: 'linear'). */
  readonly type: string;
  /** rope.scaling.factor (or the old rope.scale_linear); 1 when absent. Angles are divided by it (freq_scale = 1/factor). */
  readonly factor: number;
  /** rope.scaling.original_context_length; 0 when absent (then the training context). */
  readonly originalContextLength: number;
  /** rope.scaling.attn_factor: cos and sin are multiplied by it (LongRoPE's mscale); 1 when absent. */
  readonly attnFactor: number;
  /**
   * YaRN: rope.scaling.yarn_ext_factor, beta_fast (32), beta_slow (1), yarn_log_multiplier (0).
   * llama.cpp reads them only for families qllm does not run yet (DeepSeek 2, Grok…); planModel uses its defaults.
   */
  readonly yarnExtFactor: number | undefined;
  readonly yarnBetaFast: number;
  readonly yarnBetaSlow: number;
  readonly yarnLogMul: number;
}

export interface TokenizerConfig {
  /** tokenizer.ggml.model: 'llama' (SentencePiece), 'gpt2' (byte-level BPE), ... */
  readonly model: string;
  /** tokenizer.ggml.pre: the pre-tokenizer name for gpt2 vocabularies ('llama-bpe', 'qwen2', ...). */
  readonly pre: string | undefined;
  readonly tokens: readonly string[];
  /** Per-token scores (SentencePiece); empty if absent. */
  readonly scores: Float32Array;
  /** Per-token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. Empty if absent. */
  readonly tokenTypes: Int32Array;
  /** BPE merges "a b" (gpt2 vocabularies); empty for SentencePiece. */
  readonly merges: readonly string[];
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly padId: number | undefined;
  /** Extra end-of-generation ids (e.g. <|eot_id|>), besides eosId. */
  readonly eotId: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** tokenizer.chat_template (Jinja), if the file has one. */
  readonly chatTemplate: string | undefined;
  /** tokenizer.ggml.eom_token_id (Llama 3.1's <|eom_id|>). */
  readonly eomId?: number;
  /** Fill-in-the-middle ids (tokenizer.ggml.fim_*_token_id; the older prefix/suffix/middle names win). */
  readonly fimPreId?: number;
  readonly fimSufId?: number;
  readonly fimMidId?: number;
  readonly fimPadId?: number;
  readonly fimRepId?: number;
  readonly fimSepId?: number;
  /** general.name: llama.cpp strips whitespace after Phi-3's special tokens by it. */
  readonly modelName?: string;
  /** tokenizer.ggml.add_space_prefix (SentencePiece; Gemma's files say false). */
  readonly addSpacePrefix?: boolean;
}

/**
 * Pre-tokenizers whose vocabularies llama.cpp gives a BOS when the file has no
 * add_bos_token key (llama-vocab.cpp); SentencePiece vocabularies always do.
 */
const BOS_BY_DEFAULT = new Set(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano', 'tekken', 'chameleon']);

export interface Config {
  /** general.architecture, e.g. 'llama'. */
  readonly arch: string;
  readonly name: string;
  /** general.file_type (llama_ftype), if present. */
  readonly fileType: number | undefined;
  /** Training context length (tokens). */
  readonly contextLength: number;
  /** Model width d. */
  readonly dim: number;
  readonly nLayers: number;
  /** FFN hidden width. */
  readonly ffnDim: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  /** Per-head width (dim / nHeads unless attention.key_length says otherwise). */
  readonly headDim: number;
  readonly rmsEps: number;
  /** Rotary dimensions per head (≤ headDim). */
  readonly ropeDim: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  /** rope.scaling.finetuned, if set (Granite reads false as "no RoPE"). */
  readonly ropeFinetuned: boolean | undefined;
  /** rope.freq_base_swa: RoPE base of sliding-window layers, if the file sets it. */
  readonly ropeBaseSwa: number | undefined;
  /** attention.value_length (V head size); equals headDim unless the file says otherwise. */
  readonly valueDim: number;
  /** attention.sliding_window: window of sliding-window layers (0 or undefined: none set). */
  readonly slidingWindow: number | undefined;
  /** attention.sliding_window_pattern: a period (llama.cpp's set_swa_pattern) or one flag per layer. */
  readonly slidingWindowPattern: number | readonly boolean[] | undefined;
  /** attention.scale: the q·k scale, replacing 1/sqrt(headDim) (Granite). */
  readonly attentionScale: number | undefined;
  /** attn_logit_softcapping / final_logit_softcapping (Gemma 2/3), if set. */
  readonly attnSoftcap: number | undefined;
  readonly finalSoftcap: number | undefined;
  /** embedding_scale, residual_scale, logit_scale (Granite), if set. */
  readonly embeddingScale: number | undefined;
  readonly residualScale: number | undefined;
  readonly logitScale: number | undefined;
  readonly vocabSize: number;
  readonly tokenizer: TokenizerConfig | undefined;
  /** {arch}.pooling_type (llama_pooling_type): how embeddings pool the tokens' hidden states. Absent: 'none'. */
  readonly poolingType: PoolingType;
  /** {arch}.attention.causal (default true; false for BERT-style encoders). */
  readonly causal: boolean;
  /** Mixture of experts: {arch}.expert_count (0: a dense model) and expert_used_count (experts per token). */
  readonly expertCount: number;
  readonly expertUsedCount: number;
  /** {arch}.expert_feed_forward_length: one expert's FFN width (0: absent; the family decides then). */
  readonly expertFfnDim: number;
  /** {arch}.expert_shared_count, expert_shared_feed_forward_length, expert_group_count (0: absent); family.ts decides what each family reads. */
  readonly expertSharedCount: number;
  readonly expertSharedFfnDim: number;
  readonly expertGroupCount: number;
}

/** llama.cpp's llama_pooling_type, by its GGUF number (0 none, 1 mean, 2 cls, 3 last, 4 rank). */
export type PoolingType = 'none' | 'mean' | 'cls' | 'last' | 'rank';
const POOLING: readonly PoolingType[] = ['none', 'mean', 'cls', 'last', 'rank'];

/** Tensor names of one transformer block, named after the GGUF tensors (llama.cpp's gguf-py constants.py). */
export interface LayerTensorNames {
  attn_norm: string; // [dim]
  attn_q: string; // [dim -> nHeads*headDim]
  attn_k: string; // [dim -> nKvHeads*headDim]
  attn_v: string; // [dim -> nKvHeads*valueDim]
  /** Fused q|k|v rows (Phi-3): [dim -> qDim + 2·kvDim]. */
  attn_qkv: string;
  attn_q_bias: string; // [qDim] (Qwen2)
  attn_k_bias: string; // [kvDim]
  attn_v_bias: string; // [kvDim]
  attn_qkv_bias: string; // [qDim + 2·kvDim]
  attn_q_norm: string; // [headDim] per head (Qwen3, Gemma 3) or [qDim] (OLMo2)
  attn_k_norm: string; // [headDim] or [kvDim]
  attn_output: string; // [nHeads*headDim -> dim]
  attn_post_norm: string; // [dim] (Gemma 2/3, OLMo2)
  ffn_norm: string; // [dim]
  ffn_gate: string; // [dim -> ffnDim]
  /** [dim -> ffnDim], or gate|up fused as [dim -> 2·ffnDim] when ffn_gate is absent (Phi-3). */
  ffn_up: string;
  ffn_down: string; // [ffnDim -> dim]
  ffn_post_norm: string; // [dim]
  /** MoE: the router [dim -> experts], and the experts' 3-D tensors [experts][ff rows][dim cols] / [experts][dim][ff]. */
  ffn_gate_inp: string;
  ffn_gate_exps: string;
  ffn_up_exps: string;
  ffn_down_exps: string;
  /** gpt-oss: the router's bias [experts], the experts' biases [experts][ff] / [experts][dim], attn_output's bias [dim], attention sinks [heads]. */
  ffn_gate_inp_bias: string;
  ffn_gate_exps_bias: string;
  ffn_up_exps_bias: string;
  ffn_down_exps_bias: string;
  /** Qwen2-MoE's shared expert: its gate [dim] (one logit per token), and a dense SwiGLU FFN [dim -> sharedFf] / [sharedFf -> dim]. */
  ffn_gate_inp_shexp: string;
  ffn_gate_shexp: string;
  ffn_up_shexp: string;
  ffn_down_shexp: string;
  attn_output_bias: string;
  attn_sinks: string;
}

/** GGUF tensor names. `output` may be absent (tied embeddings). */
export const tensorNames = {
  token_embd: 'token_embd.weight', // [vocab rows, dim cols]
  output_norm: 'output_norm.weight', // [dim]
  output: 'output.weight', // [vocab rows, dim cols]
  rope_freqs: 'rope_freqs.weight', // optional f32 [ropeDim/2]: per-pair angle divisors (llama 3 rope scaling)
  rope_factors_long: 'rope_factors_long.weight', // optional f32 [ropeDim/2]: LongRoPE divisors past the original context
  rope_factors_short: 'rope_factors_short.weight', // optional f32 [ropeDim/2]: LongRoPE divisors within it
  layer(i: number): LayerTensorNames {
    const p = `blk.${i}.`;
    return {
      attn_norm: `${p}attn_norm.weight`, attn_q: `${p}attn_q.weight`, attn_k: `${p}attn_k.weight`, attn_v: `${p}attn_v.weight`,
      attn_qkv: `${p}attn_qkv.weight`, attn_q_bias: `${p}attn_q.bias`, attn_k_bias: `${p}attn_k.bias`, attn_v_bias: `${p}attn_v.bias`,
      attn_qkv_bias: `${p}attn_qkv.bias`, attn_q_norm: `${p}attn_q_norm.weight`, attn_k_norm: `${p}attn_k_norm.weight`,
      attn_output: `${p}attn_output.weight`, attn_post_norm: `${p}post_attention_norm.weight`, ffn_norm: `${p}ffn_norm.weight`,
      ffn_gate: `${p}ffn_gate.weight`, ffn_up: `${p}ffn_up.weight`, ffn_down: `${p}ffn_down.weight`, ffn_post_norm: `${p}post_ffw_norm.weight`,
      ffn_gate_inp: `${p}ffn_gate_inp.weight`, ffn_gate_exps: `${p}ffn_gate_exps.weight`, ffn_up_exps: `${p}ffn_up_exps.weight`, ffn_down_exps: `${p}ffn_down_exps.weight`,
      ffn_gate_inp_bias: `${p}ffn_gate_inp.bias`, ffn_gate_exps_bias: `${p}ffn_gate_exps.bias`, ffn_up_exps_bias: `${p}ffn_up_exps.bias`, ffn_down_exps_bias: `${p}ffn_down_exps.bias`,
      attn_output_bias: `${p}attn_output.bias`, attn_sinks: `${p}attn_sinks.weight`,
      ffn_gate_inp_shexp: `${p}ffn_gate_inp_shexp.weight`, ffn_gate_shexp: `${p}ffn_gate_shexp.weight`, ffn_up_shexp: `${p}ffn_up_shexp.weight`, ffn_down_shexp: `${p}ffn_down_shexp.weight`,
    };
  },
} as const;

/** Metadata keys the GGUF writer (quantizer, make-model) sets. */
export const metaKeys = {
  architecture: 'general.architecture',
  name: 'general.name',
  fileType: 'general.file_type',
  quantizationVersion: 'general.quantization_version',
  alignment: 'general.alignment',
} as const;

function plain(v: GgufValue | undefined): unknown {
  return v !== null && typeof v === 'object' && 'values' in v ? (v as GgufArray).values : v;
}

/** Reads the typed Config. Throws GgufError naming a missing or ill-typed key. */
export function readConfig(file: GgufFile): Config {
  const get = (k: string) => plain(file.kv.get(k)?.value);
  const where = file.path;
  // Keys name the file's architecture, which may hold any bytes: escape them in messages.
  const key = (k: string) => printable(k, 120);
  const str = (k: string, req = true): string | undefined => {
    const v = get(k);
    if (v === undefined && !req) return undefined;
    if (typeof v !== 'string') throw new GgufError(`metadata key ${key(k)} is ${v === undefined ? 'missing' : 'not a string'} in ${where}: re-convert the model with llama.cpp's convert_hf_to_gguf.py`);
    return v;
  };
  const num = (k: string, dflt?: number): number => {
    const v = get(k);
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new GgufError(`metadata key ${key(k)} is ${v === undefined ? 'missing' : 'not a number'} in ${where}: re-convert the model with llama.cpp's convert_hf_to_gguf.py`);
    return v;
  };
  const optNum = (k: string) => (get(k) === undefined ? undefined : num(k));
  /** A value outside what any model has: the file is corrupt (or was written with a bug). */
  const range = <T extends number | undefined>(k: string, v: T, ok: (x: number) => boolean, rule: string): T => {
    if (v !== undefined && !ok(v)) throw new GgufError(`metadata key ${key(k)} = ${v} is out of range (${rule}) in ${where}: the file is corrupt; re-convert the model`);
    return v;
  };
  const positive = <T extends number | undefined>(k: string, v: T): T => range(k, v, (x) => x > 0, 'must be > 0');
  const nonNegative = <T extends number | undefined>(k: string, v: T): T => range(k, v, (x) => x >= 0, 'must be >= 0');
  /** Counts and sizes GGUF stores as u32: a non-negative integer of at most 2^32 - 1. */
  const count = <T extends number | undefined>(k: string, v: T): T => range(k, v, (x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff, 'must be a whole number from 0 to 4294967295');
  const bool = (k: string, dflt: boolean) => {
    const v = get(k);
    return typeof v === 'boolean' ? v : typeof v === 'number' ? v !== 0 : dflt;
  };

  const arch = str('general.architecture') as string;
  const a = (k: string) => `${arch}.${k}`;
  const tokenizer = readTokenizer();
  const hasModel = get(a('block_count')) !== undefined;
  const dim = hasModel ? count(a('embedding_length'), num(a('embedding_length'))) : 0;
  const nHeads = hasModel ? count(a('attention.head_count'), num(a('attention.head_count'))) : 0;
  // Head sizes default to dim / heads (checkModel refuses a fraction); stated ones must be whole.
  const headDim = hasModel ? (get(a('attention.key_length')) === undefined ? (nHeads > 0 ? dim / nHeads : 0) : count(a('attention.key_length'), num(a('attention.key_length')))) : 0;
  const valueDim = hasModel ? (get(a('attention.value_length')) === undefined ? (nHeads > 0 ? dim / nHeads : 0) : count(a('attention.value_length'), num(a('attention.value_length')))) : 0;
  const linear = nonNegative(a('rope.scaling.factor'), optNum(a('rope.scaling.factor'))) || nonNegative(a('rope.scale_linear'), optNum(a('rope.scale_linear')));
  const cfg: Config = {
    arch,
    name: str('general.name', false) ?? '',
    fileType: count('general.file_type', optNum('general.file_type')),
    contextLength: hasModel ? count(a('context_length'), num(a('context_length'), 2048)) : 0,
    dim,
    nLayers: hasModel ? count(a('block_count'), num(a('block_count'))) : 0,
    ffnDim: hasModel ? count(a('feed_forward_length'), num(a('feed_forward_length'))) : 0,
    nHeads,
    nKvHeads: hasModel ? count(a('attention.head_count_kv'), num(a('attention.head_count_kv'), nHeads)) : 0,
    headDim,
    // A norm divides by sqrt(mean(x²) + eps): eps <= 0 can divide by zero.
    rmsEps: hasModel ? positive(a('attention.layer_norm_rms_epsilon'), num(a('attention.layer_norm_rms_epsilon'), 1e-5)) : 1e-5,
    ropeDim: hasModel ? count(a('rope.dimension_count'), num(a('rope.dimension_count'), headDim)) : 0,
    // Angles are base^(-2i/d): a base <= 0 gives NaN.
    ropeTheta: hasModel ? positive(a('rope.freq_base'), num(a('rope.freq_base'), 10000)) : 10000,
    ropeScaling: Object.freeze({
      type: str(a('rope.scaling.type'), false) ?? 'linear',
      // llama.cpp: a factor of 0 means none.
      factor: linear || 1,
      originalContextLength: count(a('rope.scaling.original_context_length'), optNum(a('rope.scaling.original_context_length'))) ?? 0,
      attnFactor: positive(a('rope.scaling.attn_factor'), optNum(a('rope.scaling.attn_factor'))) ?? 1,
      yarnExtFactor: optNum(a('rope.scaling.yarn_ext_factor')),
      yarnBetaFast: optNum(a('rope.scaling.yarn_beta_fast')) ?? 32,
      yarnBetaSlow: optNum(a('rope.scaling.yarn_beta_slow')) ?? 1,
      yarnLogMul: optNum(a('rope.scaling.yarn_log_multiplier')) ?? 0,
    }),
    ropeFinetuned: get(a('rope.scaling.finetuned')) === undefined ? undefined : bool(a('rope.scaling.finetuned'), true),
    ropeBaseSwa: positive(a('rope.freq_base_swa'), optNum(a('rope.freq_base_swa'))),
    valueDim,
    slidingWindow: count(a('attention.sliding_window'), optNum(a('attention.sliding_window'))),
    slidingWindowPattern: pattern(a('attention.sliding_window_pattern')),
    attentionScale: positive(a('attention.scale'), optNum(a('attention.scale'))),
    // Soft-caps: 0 is off.
    attnSoftcap: nonNegative(a('attn_logit_softcapping'), optNum(a('attn_logit_softcapping'))),
    finalSoftcap: nonNegative(a('final_logit_softcapping'), optNum(a('final_logit_softcapping'))),
    embeddingScale: positive(a('embedding_scale'), optNum(a('embedding_scale'))),
    residualScale: positive(a('residual_scale'), optNum(a('residual_scale'))),
    logitScale: positive(a('logit_scale'), optNum(a('logit_scale'))),
    vocabSize: count(a('vocab_size'), optNum(a('vocab_size'))) ?? tokenizer?.tokens.length ?? 0,
    tokenizer,
    poolingType: pooling(a('pooling_type')),
    causal: bool(a('attention.causal'), true),
    expertCount: count(a('expert_count'), perLayer(a('expert_count'))) ?? 0,
    expertUsedCount: count(a('expert_used_count'), perLayer(a('expert_used_count'))) ?? 0,
    expertFfnDim: count(a('expert_feed_forward_length'), perLayer(a('expert_feed_forward_length'))) ?? 0,
    expertSharedCount: count(a('expert_shared_count'), optNum(a('expert_shared_count'))) ?? 0,
    expertSharedFfnDim: count(a('expert_shared_feed_forward_length'), perLayer(a('expert_shared_feed_forward_length'))) ?? 0,
    expertGroupCount: count(a('expert_group_count'), optNum(a('expert_group_count'))) ?? 0,
  };
  return Object.freeze(cfg);

  function pooling(k: string): PoolingType {
    const v = optNum(k);
    if (v === undefined) return 'none';
    const t = POOLING[v];
    if (!Number.isInteger(v) || !t) throw new GgufError(`${k} = ${v} is not a pooling type llama.cpp knows (0 none, 1 mean, 2 cls, 3 last, 4 rank): the file is corrupt or newer than qllm`);
    return t;
  }

  /** A number, or one per layer (llama.cpp's get_key_or_arr) when every layer has the same; undefined when absent. */
  function perLayer(k: string): number | undefined {
    const v = get(k);
    if (!(Array.isArray(v) || ArrayBuffer.isView(v))) return optNum(k);
    const xs = Array.from(v as ArrayLike<unknown>, (x) => (typeof x === 'bigint' ? Number(x) : x));
    if (!xs.length || !xs.every((x) => typeof x === 'number' && x === xs[0])) {
      throw new GgufError(`metadata key ${key(k)} differs between layers in ${where}: qllm needs one value for every layer`);
    }
    return xs[0] as number;
  }

  /** A period (u32) or one flag per layer (a bool array), as llama.cpp's get_key_or_arr reads it. */
  function pattern(k: string): number | readonly boolean[] | undefined {
    const v = get(k);
    if (v === undefined) return undefined;
    if (Array.isArray(v) && v.every((x) => typeof x === 'boolean')) return Object.freeze([...v] as boolean[]);
    if (ArrayBuffer.isView(v)) return Object.freeze(Array.from(v as unknown as ArrayLike<number>, (x) => x !== 0));
    return count(k, num(k));
  }

  function readTokenizer(): TokenizerConfig | undefined {
    const model = str('tokenizer.ggml.model', false);
    if (model === undefined) return undefined;
    const tokens = get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens)) throw new GgufError(`metadata key tokenizer.ggml.tokens is missing in ${where}: the vocabulary is required to tokenize; re-convert the model`);
    const scores = get('tokenizer.ggml.scores');
    const types = get('tokenizer.ggml.token_type');
    const merges = get('tokenizer.ggml.merges');
    return Object.freeze({
      model,
      pre: str('tokenizer.ggml.pre', false),
      tokens: tokens as string[],
      scores: scores instanceof Float32Array ? scores : new Float32Array(0),
      tokenTypes: types instanceof Int32Array ? types : types instanceof Uint32Array ? new Int32Array(types) : new Int32Array(0),
      merges: Array.isArray(merges) ? (merges as string[]) : [],
      bosId: optNum('tokenizer.ggml.bos_token_id'),
      eosId: optNum('tokenizer.ggml.eos_token_id'),
      unkId: optNum('tokenizer.ggml.unknown_token_id'),
      padId: optNum('tokenizer.ggml.padding_token_id'),
      eotId: optNum('tokenizer.ggml.eot_token_id'),
      addBos: bool('tokenizer.ggml.add_bos_token', model === 'llama' || BOS_BY_DEFAULT.has(str('tokenizer.ggml.pre', false) ?? '')),
      addEos: bool('tokenizer.ggml.add_eos_token', false),
      chatTemplate: str('tokenizer.chat_template', false),
      eomId: optNum('tokenizer.ggml.eom_token_id'),
      fimPreId: optNum('tokenizer.ggml.prefix_token_id') ?? optNum('tokenizer.ggml.fim_pre_token_id'),
      fimSufId: optNum('tokenizer.ggml.suffix_token_id') ?? optNum('tokenizer.ggml.fim_suf_token_id'),
      fimMidId: optNum('tokenizer.ggml.middle_token_id') ?? optNum('tokenizer.ggml.fim_mid_token_id'),
      fimPadId: optNum('tokenizer.ggml.fim_pad_token_id'),
      fimRepId: optNum('tokenizer.ggml.fim_rep_token_id'),
      fimSepId: optNum('tokenizer.ggml.fim_sep_token_id'),
      modelName: str('general.name', false),
      addSpacePrefix: get('tokenizer.ggml.add_space_prefix') === undefined ? undefined : bool('tokenizer.ggml.add_space_prefix', true),
    });
  }
}
