// KV-cache element types: f32, f16 (qllm's default where the adapter has
// shader-f16) and llama.cpp's block types q8_0 and q4_0 (`--kv-type`,
// LoadOptions.kvType). One table; each type has its byte size, the WGSL that
// attention reads it with, and (block types) the ggml codec in src/quant/ that
// is its CPU reference.
//
// Layout of one cache buffer (K or V of one layer), [contextLength, kvDim]
// values with kvDim = nKvHeads·headDim:
// - f32 / f16: row-major, 4 or 2 bytes a value (f16 pairs packed in u32 words).
// - q8_0 / q4_0: every token's row is cut into nb = kvDim/32 blocks of 32
//   consecutive values, quantized exactly as ggml's quantize_row_q8_0_ref /
//   quantize_row_q4_0_ref do (the rows llama.cpp's cache quantizes). As for
//   the weights (src/gpu/formats.ts), a block's f16 scale is moved out so the
//   bodies stay u32-aligned: the buffer holds the bodies of all blocks
//   (block b = slot·nb + c at byte b·body; q8_0: 32 int8, q4_0: 16 bytes of
//   nibbles in ggml's order), then the "d plane" from u32 word dBase: the f16
//   scale of block b is half b%2 of word dBase + b/2. Bytes per block are
//   ggml's (34, 18).
import type { Config } from '../config.ts';
import { printable, UsageError } from '../errors.ts';
import { dequantize } from '../quant/dequant.ts';
import { quantize } from '../quant/quantize.ts';
import { GgmlType } from '../quant/table.ts';

export type KvType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

interface KvFormat {
  /** Values per block (1 for f32/f16). */
  block: number;
  /** Bytes per block, the f16 scale included (ggml's block size). */
  blockBytes: number;
  /** ggml type of the CPU reference codec. */
  ggml: GgmlType;
}

const KV: Record<KvType, KvFormat> = {
  f32: { block: 1, blockBytes: 4, ggml: GgmlType.F32 },
  f16: { block: 1, blockBytes: 2, ggml: GgmlType.F16 },
  q8_0: { block: 32, blockBytes: 34, ggml: GgmlType.Q8_0 },
  q4_0: { block: 32, blockBytes: 18, ggml: GgmlType.Q4_0 },
};

export const KV_TYPES = Object.keys(KV) as KvType[];

/** A block-quantized type (its store and attention read blocks). */
export const isBlockKv = (t: KvType): boolean => KV[t].block > 1;

/** `--kv-type TEXT` or LoadOptions.kvType as the caller gave it; undefined stays the default. */
export function parseKvType(text: unknown, flag = 'kvType'): KvType | undefined {
  if (text === undefined) return undefined;
  if (typeof text === 'string' && text in KV) return text as KvType;
  throw new UsageError(`${flag} ${printable(String(text))} is not a KV cache type: pass one of ${KV_TYPES.join(', ')} (default f16, or f32 where the GPU lacks shader-f16)`);
}

/**
 * The type a load uses: the one asked for, else f16 where the engine has
 * shader-f16 and f32 where not (as before kvType existed); checked against
 * the model's shape when given (checkKvType).
 */
export function resolveKvType(asked: KvType | undefined, f16: boolean, c?: Pick<Config, 'nKvHeads' | 'headDim'>): KvType {
  const t = parseKvType(asked) ?? (f16 ? 'f16' : 'f32');
  if (c) checkKvType(t, c);
  return t;
}

/**
 * Refuses a block type whose blocks would not tile a token's K/V row. qllm's
 * blocks are 32 consecutive values of the row (llama.cpp's cache rows), so
 * only kvDim must be a multiple of 32; llama.cpp itself also wants every head
 * whole (headDim % 32), which its flash-attention views need and qllm's kernels do not.
 */
export function checkKvType(t: KvType, c: Pick<Config, 'nKvHeads' | 'headDim'>): void {
  const f = KV[t];
  const kvDim = c.nKvHeads * c.headDim;
  if (kvDim % f.block !== 0) {
    throw new UsageError(`KV cache type ${t} stores each token's keys and values in blocks of ${f.block}, but this model's rows are ${c.nKvHeads} KV heads × head size ${c.headDim} = ${kvDim} values: use --kv-type f16 (kvType 'f16')`);
  }
}

/** Bytes of one cache buffer (K or V of one layer) of `ctx` positions, before the engine rounds it to whole words. */
export function kvBufferBytes(t: KvType, ctx: number, kvDim: number): number {
  const f = KV[t];
  return ((ctx * kvDim) / f.block) * f.blockBytes;
}

/** Bytes of every layer's K and V at `ctx` positions (what `qllm info` and the run stats report). */
export function kvCacheBytes(t: KvType, c: Pick<Config, 'nLayers' | 'nKvHeads' | 'headDim'>, ctx: number): number {
  const b = kvBufferBytes(t, ctx, c.nKvHeads * c.headDim);
  return 2 * c.nLayers * Math.max(4, Math.ceil(b / 4) * 4);
}

/** u32 word where the d plane of a block-type cache of `ctx` positions starts. */
export function kvDBase(t: KvType, ctx: number, kvDim: number): number {
  const f = KV[t];
  return ((ctx * kvDim) / f.block) * ((f.blockBytes - 2) / 4);
}

/**
 * The WGSL that attention kernels include as {{KV}}: the kc/vc bindings,
 * loadK/loadV, and the score options (softcap, window). f32/f16 are
 * attention_kv.wgsl unchanged; block types put attention_kv_quant.wgsl's
 * loaders in front of the same score options. Constants: the overrides it adds.
 */
export function attentionKvSource(shader: (name: string) => string, t: KvType, ctx: number, kvDim: number): { code: string; constants: Record<string, number> } {
  const plain = shader('attention_kv');
  if (!isBlockKv(t)) return { code: plain, constants: { KV_F16: t === 'f16' ? 1 : 0 } };
  const at = plain.indexOf(SCORE_MARK);
  if (at < 0) throw new Error(`attention_kv.wgsl lacks the line '${SCORE_MARK}' that begins its score options`);
  return { code: `${shader('attention_kv_quant')}\n${plain.slice(at)}`, constants: { KV_F16: 0, KV_Q4: t === 'q4_0' ? 1 : 0, KV_DBASE: kvDBase(t, ctx, kvDim) } };
}

/** The comment that starts attention_kv.wgsl's score options (what block types reuse). */
const SCORE_MARK = '// Score options';

// CPU reference (tests; the GPU store must give these bytes).

/** ggml blocks (GGUF byte order) of `values` [rows, kvDim], quantized by src/quant's codec (ggml's _ref rounding). */
export function quantizeKv(t: KvType, values: Float32Array, kvDim: number): Uint8Array {
  return quantize(KV[t].ggml, values, kvDim);
}

/** The values a cache of ggml blocks holds (dequantized as ggml does). */
export function dequantizeKv(t: KvType, blocks: Uint8Array, n: number): Float32Array {
  return dequantize(KV[t].ggml, blocks, n);
}

/** The GPU words of a block-type cache (the layout above) → ggml blocks, for comparing with the codec. */
export function gpuToBlocks(t: KvType, words: Uint32Array, ctx: number, kvDim: number): Uint8Array {
  const f = KV[t], body = f.blockBytes - 2, nBlocks = (ctx * kvDim) / f.block;
  const src = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Uint8Array(nBlocks * f.blockBytes);
  const dBase = kvDBase(t, ctx, kvDim) * 4;
  for (let b = 0; b < nBlocks; b++) {
    out[b * f.blockBytes] = src[dBase + 2 * b];
    out[b * f.blockBytes + 1] = src[dBase + 2 * b + 1];
    out.set(src.subarray(b * body, (b + 1) * body), b * f.blockBytes + 2);
  }
  return out;
}
