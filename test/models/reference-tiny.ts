// Tiny F32 GGUFs of every family, written in memory for the reference tests
// (and on disk for llama.cpp to load). The tensor set of each architecture is
// what llama.cpp's load_arch_tensors (src/models/<arch>.cpp) requires, so
// llama.cpp accepts the files; values are seeded random, norms around 1.
import { readConfig } from '../../src/config.ts';
import type { Config } from '../../src/config.ts';
import { openGgufBytes } from '../../src/gguf/reader.ts';
import type { GgufKV } from '../../src/gguf/types.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { GgmlType } from '../../src/quant/table.ts';
import { Rng } from '../../src/synth/blocks.ts';
import { MIN_VOCAB, syntheticVocab } from '../../src/synth/vocab.ts';

export interface TinySpec {
  arch: string;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  /** attention.key_length = value_length when set (else dim/heads). */
  headDim?: number;
  ropeDim?: number;
  ropeBase?: number;
  vocab?: number;
  ctx?: number;
  eps?: number;
  /** Extra metadata, full key names (e.g. kv.f32('gemma2.attn_logit_softcapping', 50)). */
  extra?: GgufKV[];
  /** Write output.weight (default: the arch's usual choice: gemma/gemma2 never, olmo2 always, else yes). */
  output?: boolean;
  /** Phi-3 style fused attn_qkv (default: phi3). */
  fusedQkv?: boolean;
  /** q/k/v biases (default: qwen2). */
  qkvBias?: boolean;
  /** Extra tensors (rope_freqs.weight, rope_factors_long.weight...). */
  addTensors?: Record<string, Float32Array>;
  seed?: number;
  /** Standard deviation of the matrices (default 0.25: big enough for peaked attention in a tiny model). */
  std?: number;
  /** Edits a tensor after generation (zeroing a branch, copying weights between files). */
  edit?: (name: string, data: Float32Array) => void;
}

export interface Tiny {
  bytes: Uint8Array;
  config: Config;
  /** The tensors as written: name → values (f32, ggml row-major). */
  weights: Map<string, Float32Array>;
}

/** Roughly normal values (sum of 4 uniforms), seeded. */
export function randn(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.float() + rng.float() + rng.float() + rng.float() - 2) * std * Math.sqrt(3);
  return out;
}

/** Builds the tensors and metadata of a tiny model of `s.arch` and parses them back. */
export async function tinyModel(s: TinySpec): Promise<Tiny> {
  const rng = new Rng(s.seed ?? 1);
  const std = s.std ?? 0.25;
  const a = s.arch;
  const vocab = s.vocab ?? MIN_VOCAB;
  const hd = s.headDim ?? s.dim / s.heads;
  const qDim = s.heads * hd, kvDim = s.kvHeads * hd;
  const fusedQkv = s.fusedQkv ?? a === 'phi3';
  const qkvBias = s.qkvBias ?? a === 'qwen2';
  const output = s.output ?? !['gemma', 'gemma2'].includes(a);
  const preNorm = a !== 'olmo2';
  const postNorm = ['gemma2', 'gemma3', 'olmo2'].includes(a);
  const qkNorm = a === 'olmo2' ? 'full' : ['qwen3', 'gemma3'].includes(a) ? 'head' : undefined;

  const tensors: { name: string; dims: number[]; data: Float32Array }[] = [];
  const mat = (name: string, cols: number, rows: number) => tensors.push({ name, dims: [cols, rows], data: randn(rng, cols * rows, std) });
  const vec = (name: string, n: number, around = 1, spread = 0.2) => {
    const d = randn(rng, n, spread);
    for (let i = 0; i < n; i++) d[i] += around;
    tensors.push({ name, dims: [n], data: d });
  };
  mat('token_embd.weight', s.dim, vocab);
  for (let i = 0; i < s.layers; i++) {
    const p = `blk.${i}.`;
    if (preNorm) vec(`${p}attn_norm.weight`, s.dim);
    if (fusedQkv) mat(`${p}attn_qkv.weight`, s.dim, qDim + 2 * kvDim);
    else {
      mat(`${p}attn_q.weight`, s.dim, qDim);
      mat(`${p}attn_k.weight`, s.dim, kvDim);
      mat(`${p}attn_v.weight`, s.dim, kvDim);
    }
    if (qkvBias) {
      if (fusedQkv) vec(`${p}attn_qkv.bias`, qDim + 2 * kvDim, 0, 0.3);
      else {
        vec(`${p}attn_q.bias`, qDim, 0, 0.3);
        vec(`${p}attn_k.bias`, kvDim, 0, 0.3);
        vec(`${p}attn_v.bias`, kvDim, 0, 0.3);
      }
    }
    if (qkNorm === 'head') {
      vec(`${p}attn_q_norm.weight`, hd);
      vec(`${p}attn_k_norm.weight`, hd);
    } else if (qkNorm === 'full') {
      vec(`${p}attn_q_norm.weight`, qDim);
      vec(`${p}attn_k_norm.weight`, kvDim);
    }
    mat(`${p}attn_output.weight`, qDim, s.dim);
    if (postNorm) vec(`${p}post_attention_norm.weight`, s.dim);
    if (preNorm) vec(`${p}ffn_norm.weight`, s.dim);
    if (a === 'phi3') mat(`${p}ffn_up.weight`, s.dim, 2 * s.ffn);
    else {
      mat(`${p}ffn_gate.weight`, s.dim, s.ffn);
      mat(`${p}ffn_up.weight`, s.dim, s.ffn);
    }
    mat(`${p}ffn_down.weight`, s.ffn, s.dim);
    if (postNorm) vec(`${p}post_ffw_norm.weight`, s.dim);
  }
  vec('output_norm.weight', s.dim);
  if (output) mat('output.weight', s.dim, vocab);
  for (const [name, data] of Object.entries(s.addTensors ?? {})) tensors.push({ name, dims: [data.length], data });
  if (s.edit) for (const t of tensors) s.edit(t.name, t.data);

  const meta: GgufKV[] = [
    kv.str('general.architecture', a),
    kv.str('general.name', 'tiny reference model'),
    kv.u32(`${a}.context_length`, s.ctx ?? 64),
    kv.u32(`${a}.embedding_length`, s.dim),
    kv.u32(`${a}.block_count`, s.layers),
    kv.u32(`${a}.feed_forward_length`, s.ffn),
    kv.u32(`${a}.attention.head_count`, s.heads),
    kv.u32(`${a}.attention.head_count_kv`, s.kvHeads),
    kv.f32(`${a}.attention.layer_norm_rms_epsilon`, s.eps ?? 1e-5),
    kv.u32(`${a}.rope.dimension_count`, s.ropeDim ?? hd),
    kv.f32(`${a}.rope.freq_base`, s.ropeBase ?? 10000),
    ...(s.headDim ? [kv.u32(`${a}.attention.key_length`, hd), kv.u32(`${a}.attention.value_length`, hd)] : []),
    ...(s.extra ?? []),
    ...syntheticVocab(vocab),
  ];
  const bytes = writeGgufToBytes({ kv: meta, tensors: tensors.map((t) => ({ name: t.name, dims: t.dims, type: GgmlType.F32, data: new Uint8Array(t.data.buffer) })) });
  const file = await openGgufBytes(bytes);
  const config = readConfig(file);
  await file.close();
  return { bytes, config, weights: new Map(tensors.map((t) => [t.name, t.data])) };
}
