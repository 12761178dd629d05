// The one place that knows GGUF metadata key spellings. readConfig() turns a
// GgufFile's metadata into a frozen, typed Config; everything else (model,
// tokenizer, info, quantizer) reads Config fields, never raw keys.
import { GgufError } from './errors.ts';
import type { GgufArray, GgufFile, GgufValue } from './gguf/types.ts';

export interface RopeScaling {
  /** 'none' | 'linear' | 'yarn' (yarn is read but not applied yet). */
  readonly type: string;
  readonly factor: number;
  readonly originalContextLength: number;
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
}

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
  readonly vocabSize: number;
  readonly tokenizer: TokenizerConfig | undefined;
}

/** Tensor names of one transformer block, named after the GGUF tensors. */
export interface LayerTensorNames {
  attn_norm: string; // [dim]
  attn_q: string; // [dim -> nHeads*headDim]
  attn_k: string; // [dim -> nKvHeads*headDim]
  attn_v: string; // [dim -> nKvHeads*headDim]
  attn_output: string; // [nHeads*headDim -> dim]
  ffn_norm: string; // [dim]
  ffn_gate: string; // [dim -> ffnDim]
  ffn_up: string; // [dim -> ffnDim]
  ffn_down: string; // [ffnDim -> dim]
}

/** GGUF tensor names of the llama family. `output` may be absent (tied embeddings). */
export const tensorNames = {
  token_embd: 'token_embd.weight', // [vocab rows, dim cols]
  output_norm: 'output_norm.weight', // [dim]
  output: 'output.weight', // [vocab rows, dim cols]
  rope_freqs: 'rope_freqs.weight', // optional f32 [ropeDim/2]: per-pair angle divisors (llama 3 rope scaling)
  layer(i: number): LayerTensorNames {
    const p = `blk.${i}.`;
    return {
      attn_norm: `${p}attn_norm.weight`, attn_q: `${p}attn_q.weight`, attn_k: `${p}attn_k.weight`,
      attn_v: `${p}attn_v.weight`, attn_output: `${p}attn_output.weight`, ffn_norm: `${p}ffn_norm.weight`,
      ffn_gate: `${p}ffn_gate.weight`, ffn_up: `${p}ffn_up.weight`, ffn_down: `${p}ffn_down.weight`,
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
  const str = (k: string, req = true): string | undefined => {
    const v = get(k);
    if (v === undefined && !req) return undefined;
    if (typeof v !== 'string') throw new GgufError(`metadata key ${k} is ${v === undefined ? 'missing' : 'not a string'} in ${where}: re-convert the model with llama.cpp's convert_hf_to_gguf.py`);
    return v;
  };
  const num = (k: string, dflt?: number): number => {
    const v = get(k);
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new GgufError(`metadata key ${k} is ${v === undefined ? 'missing' : 'not a number'} in ${where}: re-convert the model with llama.cpp's convert_hf_to_gguf.py`);
    return v;
  };
  const optNum = (k: string) => (get(k) === undefined ? undefined : num(k));
  const bool = (k: string, dflt: boolean) => {
    const v = get(k);
    return typeof v === 'boolean' ? v : typeof v === 'number' ? v !== 0 : dflt;
  };

  const arch = str('general.architecture') as string;
  const a = (k: string) => `${arch}.${k}`;
  const tokenizer = readTokenizer();
  const hasModel = get(a('block_count')) !== undefined;
  const dim = hasModel ? num(a('embedding_length')) : 0;
  const nHeads = hasModel ? num(a('attention.head_count')) : 0;
  const headDim = hasModel ? num(a('attention.key_length'), nHeads > 0 ? dim / nHeads : 0) : 0;
  const posInt = (k: string, v: number) => {
    if (!Number.isInteger(v) || v < 0) throw new GgufError(`metadata key ${k} = ${v} is not a non-negative integer in ${where}: the file is corrupt`);
    return v;
  };
  const cfg: Config = {
    arch,
    name: str('general.name', false) ?? '',
    fileType: optNum('general.file_type'),
    contextLength: hasModel ? posInt(a('context_length'), num(a('context_length'), 2048)) : 0,
    dim: posInt(a('embedding_length'), dim),
    nLayers: hasModel ? posInt(a('block_count'), num(a('block_count'))) : 0,
    ffnDim: hasModel ? posInt(a('feed_forward_length'), num(a('feed_forward_length'))) : 0,
    nHeads: posInt(a('attention.head_count'), nHeads),
    nKvHeads: hasModel ? posInt(a('attention.head_count_kv'), num(a('attention.head_count_kv'), nHeads)) : 0,
    headDim,
    rmsEps: hasModel ? num(a('attention.layer_norm_rms_epsilon'), 1e-5) : 1e-5,
    ropeDim: hasModel ? num(a('rope.dimension_count'), headDim) : 0,
    ropeTheta: hasModel ? num(a('rope.freq_base'), 10000) : 10000,
    ropeScaling: Object.freeze({
      type: str(a('rope.scaling.type'), false) ?? (optNum(a('rope.scale_linear')) ? 'linear' : 'none'),
      factor: optNum(a('rope.scaling.factor')) ?? optNum(a('rope.scale_linear')) ?? 1,
      originalContextLength: optNum(a('rope.scaling.original_context_length')) ?? 0,
    }),
    vocabSize: optNum(a('vocab_size')) ?? tokenizer?.tokens.length ?? 0,
    tokenizer,
  };
  return Object.freeze(cfg);

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
      addBos: bool('tokenizer.ggml.add_bos_token', model === 'llama'),
      addEos: bool('tokenizer.ggml.add_eos_token', false),
      chatTemplate: str('tokenizer.chat_template', false),
    });
  }
}
