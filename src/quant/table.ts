// The ggml tensor-type table: id, name, elements per block, bytes per block.
// Ids and block layouts follow ggml.h / ggml-common.h. `supported` marks the
// types qllm can decode (CPU reference and GPU kernels); the others are listed
// so that `qllm info` can still size any tensor and name it in an error.
import { GgufError } from '../errors.ts';

export enum GgmlType {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
}

export interface TypeInfo {
  readonly id: GgmlType;
  readonly name: string;
  /** Elements per block (1 for plain float/int types). */
  readonly blockElems: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** qllm has a CPU decoder and GPU kernels for it. */
  readonly supported: boolean;
}

const rows: [GgmlType, string, number, number, boolean][] = [
  [GgmlType.F32, 'F32', 1, 4, true],
  [GgmlType.F16, 'F16', 1, 2, true],
  [GgmlType.BF16, 'BF16', 1, 2, true],
  [GgmlType.Q4_0, 'Q4_0', 32, 18, true], // f16 d, 16 B of nibbles
  [GgmlType.Q4_1, 'Q4_1', 32, 20, true], // f16 d, f16 m, 16 B of nibbles
  [GgmlType.Q5_0, 'Q5_0', 32, 22, true], // f16 d, 4 B high bits, 16 B nibbles
  [GgmlType.Q5_1, 'Q5_1', 32, 24, true], // f16 d, f16 m, 4 B high bits, 16 B nibbles
  [GgmlType.Q8_0, 'Q8_0', 32, 34, true], // f16 d, 32 int8
  [GgmlType.Q8_1, 'Q8_1', 32, 36, false],
  [GgmlType.Q2_K, 'Q2_K', 256, 84, true], // 16 B scales, 64 B quants, f16 d, f16 dmin
  [GgmlType.Q3_K, 'Q3_K', 256, 110, true], // 32 B hmask, 64 B quants, 12 B scales, f16 d
  [GgmlType.Q4_K, 'Q4_K', 256, 144, true], // f16 d, f16 dmin, 12 B scales, 128 B quants
  [GgmlType.Q5_K, 'Q5_K', 256, 176, true], // f16 d, f16 dmin, 12 B scales, 32 B qh, 128 B qs
  [GgmlType.Q6_K, 'Q6_K', 256, 210, true], // 128 B ql, 64 B qh, 16 int8 scales, f16 d
  [GgmlType.Q8_K, 'Q8_K', 256, 292, false],
  [GgmlType.IQ2_XXS, 'IQ2_XXS', 256, 66, false],
  [GgmlType.IQ2_XS, 'IQ2_XS', 256, 74, false],
  [GgmlType.IQ3_XXS, 'IQ3_XXS', 256, 98, false],
  [GgmlType.IQ1_S, 'IQ1_S', 256, 50, false],
  [GgmlType.IQ4_NL, 'IQ4_NL', 32, 18, true], // f16 d, 16 B nibbles into a non-linear table
  [GgmlType.IQ3_S, 'IQ3_S', 256, 110, false],
  [GgmlType.IQ2_S, 'IQ2_S', 256, 82, false],
  [GgmlType.IQ4_XS, 'IQ4_XS', 256, 136, true], // f16 d, u16 scales_h, 4 B scales_l, 128 B nibbles
  [GgmlType.I8, 'I8', 1, 1, false],
  [GgmlType.I16, 'I16', 1, 2, false],
  [GgmlType.I32, 'I32', 1, 4, false],
  [GgmlType.I64, 'I64', 1, 8, false],
  [GgmlType.F64, 'F64', 1, 8, false],
  [GgmlType.IQ1_M, 'IQ1_M', 256, 56, false],
  [GgmlType.TQ1_0, 'TQ1_0', 256, 54, false],
  [GgmlType.TQ2_0, 'TQ2_0', 256, 66, false],
  [GgmlType.MXFP4, 'MXFP4', 32, 17, true], // e8m0 exponent byte, 16 B of e2m1 nibbles (mxfp4.ts)
];

export const TYPES: ReadonlyMap<number, TypeInfo> = new Map(
  rows.map(([id, name, blockElems, blockBytes, supported]) => [id, Object.freeze({ id, name, blockElems, blockBytes, supported })]),
);

/** Info for a type id, or undefined if ggml has no such type. */
export function typeInfo(id: number): TypeInfo | undefined {
  return TYPES.get(id);
}

export function typeByName(name: string): TypeInfo | undefined {
  const up = name.toUpperCase();
  for (const t of TYPES.values()) if (t.name === up) return t;
  return undefined;
}

/** Info for a type qllm can decode; throws a GgufError naming the type otherwise. */
export function supportedType(id: number, where = ''): TypeInfo {
  const t = TYPES.get(id);
  if (!t) throw new GgufError(`unknown ggml type id ${id}${where ? ` in ${where}` : ''}: the file is corrupt or from a newer ggml; re-convert it with a current llama.cpp`);
  if (!t.supported) throw new GgufError(`tensor type ${t.name} (id ${id})${where ? ` in ${where}` : ''} is not supported by qllm; re-quantize to Q4_K_M, Q4_0 or Q8_0`);
  return t;
}

/** Bytes of `n` elements of type t; n must be a multiple of the block size. */
export function bytesFor(t: TypeInfo, n: number): number {
  return (n / t.blockElems) * t.blockBytes;
}

/** Bits per weight of a type (e.g. 4.5 for Q4_0). */
export function bitsPerWeight(t: TypeInfo): number {
  return (t.blockBytes * 8) / t.blockElems;
}
