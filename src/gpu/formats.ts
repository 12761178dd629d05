// How each tensor type lies in a GPU buffer, and which WGSL dequant snippet
// reads it.
//
// Layouts (bits per weight never change):
// - F32: GGUF order, 4 B per element.
// - F16 / BF16: GGUF order, 2 B per element, read as halves of u32 words
//   (a row may start mid-word when cols is odd).
// - Blocks whose size is a multiple of 4 (Q4_1 20, Q5_1 24, Q2_K 84, Q4_K 144,
//   Q5_K 176, IQ4_XS 136): GGUF block order, unchanged; every block starts on
//   a u32 boundary.
// - Blocks of 4k+2 bytes (Q4_0 18, Q5_0 22, Q8_0 34, IQ4_NL 18, Q3_K 110,
//   Q6_K 210): the block's one f16 scale `d` (at byte `dOffset`) is moved out.
//   A part buffer holds the "bodies" (block minus d, 4k bytes, GGUF order) for
//   all its rows, then the "d plane": one f16 per block, two per u32, in the
//   same block order (index = localRow * blocksPerRow + block). So bodies
//   are u32-aligned (Q4_0: 16 B = one vec4<u32>; Q8_0: 32 B = two).
//   Tiled formats (Q4_0, Q8_0, Q6_K: `tile` = 32) also reorder blocks, bodies and
//   d plane alike: rows are grouped in tiles of 32 (the last tile of a part
//   may be shorter, `tw` rows) and inside a tile block c of row r lies at
//   tileStart + c * tw + r % 32, so adjacent rows' blocks are adjacent (the
//   matvec kernel's lanes read adjacent records). Index: blockIndex() below
//   and bidx() in the snippet.
// - MXFP4 (17 B: one e8m0 exponent byte, then 16 B of nibbles): repacked like
//   Q4_0 with a one-byte scale (`scaleBytes: 1`): bodies (16 B = one
//   vec4<u32>, tiled by 32 rows), then the "e plane", one byte per block, four
//   per u32, in the same block order.
// Every part buffer is padded to a multiple of 16 bytes.
import { GgmlType, type TypeInfo } from '../quant/table.ts';
import { GpuError, printable } from '../errors.ts';

export interface GpuFormat {
  /** WGSL snippet shaders/dequant_<snippet>.wgsl. */
  snippet: string;
  kind: 'f32' | 'f16' | 'bf16' | 'blocks';
  /** Byte offset of the f16 scale that is moved to the d plane; -1: block kept whole. */
  dOffset: number;
  /** Bytes of that scale: 2 (an f16, the default) or 1 (MXFP4's e8m0 exponent). */
  scaleBytes?: 1 | 2;
  /** Required multiple of the row length (elements). */
  colsMultiple: number;
  /** Rows per tile of the block order (repacked formats only); 0 = row-major. */
  tile?: number;
  /** A matvec shader of its own (whole blocks per step) instead of matvec_generic's 32-element chunks. */
  matvec?: string;
}

const F: Partial<Record<GgmlType, GpuFormat>> = {
  [GgmlType.F32]: { snippet: 'f32', kind: 'f32', dOffset: -1, colsMultiple: 1 },
  [GgmlType.F16]: { snippet: 'f16', kind: 'f16', dOffset: -1, colsMultiple: 1 },
  [GgmlType.BF16]: { snippet: 'bf16', kind: 'bf16', dOffset: -1, colsMultiple: 1 },
  [GgmlType.Q4_0]: { snippet: 'q4_0', kind: 'blocks', dOffset: 0, colsMultiple: 32, tile: 32 },
  [GgmlType.Q4_1]: { snippet: 'q4_1', kind: 'blocks', dOffset: -1, colsMultiple: 32 },
  [GgmlType.Q5_0]: { snippet: 'q5_0', kind: 'blocks', dOffset: 0, colsMultiple: 32 },
  [GgmlType.Q5_1]: { snippet: 'q5_1', kind: 'blocks', dOffset: -1, colsMultiple: 32 },
  [GgmlType.Q8_0]: { snippet: 'q8_0', kind: 'blocks', dOffset: 0, colsMultiple: 32, tile: 32 },
  [GgmlType.Q2_K]: { snippet: 'q2_k', kind: 'blocks', dOffset: -1, colsMultiple: 256 },
  [GgmlType.Q3_K]: { snippet: 'q3_k', kind: 'blocks', dOffset: 108, colsMultiple: 256 },
  [GgmlType.Q4_K]: { snippet: 'q4_k', kind: 'blocks', dOffset: -1, colsMultiple: 256, matvec: 'matvec_q4_k' },
  [GgmlType.Q5_K]: { snippet: 'q5_k', kind: 'blocks', dOffset: -1, colsMultiple: 256 },
  [GgmlType.Q6_K]: { snippet: 'q6_k', kind: 'blocks', dOffset: 208, colsMultiple: 256, tile: 32, matvec: 'matvec_q6_k' },
  [GgmlType.IQ4_NL]: { snippet: 'iq4_nl', kind: 'blocks', dOffset: 0, colsMultiple: 32 },
  [GgmlType.IQ4_XS]: { snippet: 'iq4_xs', kind: 'blocks', dOffset: -1, colsMultiple: 256 },
  [GgmlType.MXFP4]: { snippet: 'mxfp4', kind: 'blocks', dOffset: 0, scaleBytes: 1, colsMultiple: 32, tile: 32 },
};

export function gpuFormat(t: TypeInfo, where = ''): GpuFormat {
  const f = F[t.id];
  if (!f) throw new GpuError(`tensor type ${t.name}${where ? ` (${printable(where)})` : ''} has no GPU kernel in qllm: re-quantize to Q4_K_M, Q4_0 or Q8_0`);
  return f;
}

/** Bytes of one row in GGUF order. */
export function rowBytes(t: TypeInfo, cols: number): number {
  return (cols / t.blockElems) * t.blockBytes;
}

/** Bytes of a part buffer holding `rows` rows, padding included. */
export function partBytes(t: TypeInfo, rows: number, cols: number): number {
  return Math.ceil((rows * rowBytes(t, cols)) / 16) * 16;
}

/** u32 index where the d plane of a part with `rows` rows starts (repacked formats). */
export function dPlaneWord(t: TypeInfo, rows: number, cols: number): number {
  const bodyBytes = t.blockBytes - (F[t.id]?.scaleBytes ?? 2);
  return (rows * (cols / t.blockElems) * bodyBytes) / 4;
}

/** Position of block `c` of local row `row` in a part of `rows` rows (see the tiled layout above). */
export function blockIndex(tile: number, rows: number, nb: number, row: number, c: number): number {
  if (!tile) return row * nb + c;
  const t0 = row - (row % tile);
  const tw = Math.min(tile, rows - t0);
  return t0 * nb + c * tw + (row - t0);
}
