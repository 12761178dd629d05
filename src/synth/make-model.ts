// Synthetic Llama GGUF models of any shape and weight format, with random
// weights generated directly as quant blocks and streamed to disk in chunks.
// Used for tests (tiny) and for size/speed runs at real shapes (tinyllama).
import { stat } from 'node:fs/promises';
import { tensorNames } from '../config.ts';
import { UsageError } from '../errors.ts';
import { openGguf } from '../gguf/reader.ts';
import type { GgufKV } from '../gguf/types.ts';
import { GgufWriter, kv } from '../gguf/writer.ts';
import { GgmlType, type TypeInfo, typeByName, typeInfo } from '../quant/table.ts';
import { blockFiller, generatableTypes, normWeights, Rng } from './blocks.ts';
import { syntheticVocab } from './vocab.ts';

export interface Shape { dim: number; layers: number; heads: number; kvHeads: number; ffn: number; vocab: number; ctx: number }

export const PRESETS: Record<string, Shape> = {
  tiny: { dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 512, ctx: 256 },
  s110m: { dim: 768, layers: 12, heads: 12, kvHeads: 12, ffn: 2048, vocab: 32000, ctx: 1024 },
  tinyllama: { dim: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, ctx: 2048 },
};
/** tiny with rows that are multiples of 256, so k-quants apply to every matrix. */
const TINY_K: Partial<Shape> = { dim: 256, ffn: 512 };

/** llama_ftype (llama.h) written as general.file_type. */
const FTYPE: Record<string, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 12, q4_k: 14, q4_k_m: 15,
  q5_k: 16, q6_k: 18, iq4_nl: 25, iq4_xs: 30, bf16: 32,
};
export const MODEL_TYPES = Object.keys(FTYPE);

export interface MakeModelOptions extends Partial<Shape> {
  out: string;
  preset?: string;
  /** A weight type (f32 … iq4_xs) or the q4_k_m mix. Default f32. */
  type?: string;
  seed?: number;
  /** Copy tokenizer.* metadata from this vocabulary GGUF; the vocab size comes from it. */
  vocabFile?: string;
  name?: string;
  /** Std of the random matrix weights (default 0.02). */
  std?: number;
  /** Progress/notes sink (default: none). */
  log?: (line: string) => void;
}

export interface MadeModel { path: string; bytes: number; shape: Shape; tensors: { name: string; dims: number[]; type: string }[]; notes: string[] }

const CHUNK = 16 << 20;
const isK = (t: GgmlType) => typeInfo(t)!.blockElems === 256;

/** llama.cpp's "use more bits" layers: first and last eighth, and every third in between. */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8); // C integer division, as in llama.cpp
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

/** llama.cpp's fallback when a type's block does not divide the row length. */
function fallback(t: GgmlType, rowLen: number): GgmlType {
  let out = t;
  if (rowLen % typeInfo(out)!.blockElems !== 0) {
    const alt: Partial<Record<GgmlType, GgmlType>> = {
      [GgmlType.Q2_K]: GgmlType.IQ4_NL, [GgmlType.Q3_K]: GgmlType.IQ4_NL, [GgmlType.IQ4_XS]: GgmlType.IQ4_NL,
      [GgmlType.Q4_K]: GgmlType.Q5_0, [GgmlType.Q5_K]: GgmlType.Q5_1, [GgmlType.Q6_K]: GgmlType.Q8_0,
    };
    out = alt[out] ?? GgmlType.F16;
  }
  if (rowLen % typeInfo(out)!.blockElems !== 0) out = GgmlType.F16;
  return out;
}

function weightType(mix: string, tensor: string, layer: number, nLayers: number): GgmlType {
  if (mix === 'q4_k_m') {
    if (tensor === 'output') return GgmlType.Q6_K;
    if ((tensor === 'attn_v' || tensor === 'ffn_down') && useMoreBits(layer, nLayers)) return GgmlType.Q6_K;
    return GgmlType.Q4_K;
  }
  return typeByName(mix)!.id;
}

export function resolveShape(o: MakeModelOptions): Shape {
  const preset = o.preset ?? 'tiny';
  const base = PRESETS[preset];
  if (!base) throw new UsageError(`unknown preset '${preset}': use one of ${Object.keys(PRESETS).join(', ')}`);
  const type = (o.type ?? 'f32').toLowerCase();
  const kQuant = type === 'q4_k_m' || (typeByName(type) !== undefined && isK(typeByName(type)!.id));
  const s: Shape = { ...base, ...(preset === 'tiny' && kQuant ? TINY_K : {}) };
  for (const k of Object.keys(s) as (keyof Shape)[]) {
    const v = o[k];
    if (v !== undefined) {
      if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${k === 'kvHeads' ? 'kv-heads' : k} ${v} must be a positive integer`);
      s[k] = v;
    }
  }
  if (o.heads !== undefined && o.kvHeads === undefined) s.kvHeads = Math.min(s.kvHeads, s.heads);
  if (s.dim % s.heads !== 0) throw new UsageError(`--dim ${s.dim} is not a multiple of --heads ${s.heads}: pick a dim divisible by the head count`);
  if (s.heads % s.kvHeads !== 0) throw new UsageError(`--heads ${s.heads} is not a multiple of --kv-heads ${s.kvHeads}: pick a kv-head count that divides it`);
  if ((s.dim / s.heads) % 2 !== 0) throw new UsageError(`head size ${s.dim / s.heads} must be even for RoPE: change --dim or --heads`);
  return s;
}

/** Writes a synthetic model; returns what was written. */
export async function makeModel(o: MakeModelOptions): Promise<MadeModel> {
  const type = (o.type ?? 'f32').toLowerCase();
  if (!(type in FTYPE)) throw new UsageError(`--type ${o.type} is not one of ${MODEL_TYPES.join(' ')}`);
  if (type !== 'q4_k_m' && !generatableTypes().includes(type.toUpperCase())) throw new UsageError(`--type ${type} cannot be generated`);
  const log = o.log ?? (() => {});
  const notes: string[] = [];
  const shape = resolveShape(o);

  let vocabKv: GgufKV[];
  if (o.vocabFile) {
    const v = await openGguf(o.vocabFile);
    vocabKv = [...v.kv.values()].filter((k) => k.key.startsWith('tokenizer.'));
    await v.close();
    const toks = vocabKv.find((k) => k.key === 'tokenizer.ggml.tokens')?.value;
    const n = toks && typeof toks === 'object' && 'values' in toks ? toks.values.length : 0;
    if (!n) throw new UsageError(`--vocab ${o.vocabFile} has no tokenizer.ggml.tokens: pass a vocabulary GGUF such as ggml-vocab-llama-spm.gguf`);
    shape.vocab = n;
  } else {
    vocabKv = syntheticVocab(shape.vocab);
  }

  const { dim, layers, heads, kvHeads, ffn, vocab, ctx } = shape;
  const headDim = dim / heads;
  const kvDim = kvHeads * headDim;
  const specs: { name: string; dims: number[]; type: GgmlType; norm: boolean }[] = [];
  const mat = (name: string, role: string, layer: number, cols: number, rows: number) => {
    const want = weightType(type, role, layer, layers);
    const t = fallback(want, cols);
    if (t !== want) {
      const note = `${name}: rows of ${cols} are not a multiple of the ${typeInfo(want)!.name} block (${typeInfo(want)!.blockElems}); using ${typeInfo(t)!.name} as llama.cpp does`;
      notes.push(note);
      log(`note: ${note}`);
    }
    specs.push({ name, dims: [cols, rows], type: t, norm: false });
  };
  const norm = (name: string) => specs.push({ name, dims: [dim], type: GgmlType.F32, norm: true });
  mat(tensorNames.token_embd, 'token_embd', -1, dim, vocab);
  for (let i = 0; i < layers; i++) {
    const n = tensorNames.layer(i);
    norm(n.attn_norm);
    mat(n.attn_q, 'attn_q', i, dim, dim);
    mat(n.attn_k, 'attn_k', i, dim, kvDim);
    mat(n.attn_v, 'attn_v', i, dim, kvDim);
    mat(n.attn_output, 'attn_output', i, dim, dim);
    norm(n.ffn_norm);
    mat(n.ffn_gate, 'ffn_gate', i, dim, ffn);
    mat(n.ffn_up, 'ffn_up', i, dim, ffn);
    mat(n.ffn_down, 'ffn_down', i, ffn, dim);
  }
  norm(tensorNames.output_norm);
  mat(tensorNames.output, 'output', -1, dim, vocab);

  const meta: GgufKV[] = [
    kv.str('general.architecture', 'llama'),
    kv.str('general.name', o.name ?? `synthetic-${o.preset ?? 'tiny'}-${type}`),
    kv.u32('general.file_type', FTYPE[type]!),
    kv.u32('general.quantization_version', 2),
    kv.u32('llama.context_length', ctx),
    kv.u32('llama.embedding_length', dim),
    kv.u32('llama.block_count', layers),
    kv.u32('llama.feed_forward_length', ffn),
    kv.u32('llama.attention.head_count', heads),
    kv.u32('llama.attention.head_count_kv', kvHeads),
    kv.f32('llama.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('llama.rope.dimension_count', headDim),
    kv.f32('llama.rope.freq_base', 10000),
    kv.u32('llama.vocab_size', vocab),
    ...vocabKv,
  ];

  const rng = new Rng(o.seed ?? 1);
  const std = o.std ?? 0.02;
  const w = await GgufWriter.create(o.out, { kv: meta, tensors: specs, atomic: true });
  try {
    const buf = new Uint8Array(CHUNK);
    for (const s of specs) {
      if (s.norm) { await w.writeTensorData(s.name, normWeights(s.dims[0]!, rng)); continue; }
      const info: TypeInfo = typeInfo(s.type)!;
      const filler = blockFiller(s.type, std, rng);
      const total = (s.dims[0]! * s.dims[1]!) / info.blockElems * info.blockBytes;
      // Whole blocks per chunk; float types also stay 4-byte aligned.
      const per = Math.floor(CHUNK / (info.blockBytes * 2)) * info.blockBytes * 2;
      for (let done = 0; done < total; done += per) {
        const chunk = buf.subarray(0, Math.min(per, total - done));
        filler.fill(chunk);
        await w.write(s.name, chunk);
      }
    }
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
  const bytes = (await stat(o.out)).size;
  return { path: o.out, bytes, shape, notes, tensors: specs.map((s) => ({ name: s.name, dims: s.dims, type: typeInfo(s.type)!.name })) };
}
