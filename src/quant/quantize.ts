// CPU reference quantizers producing the same bytes as ggml's
// quantize_row_*_ref (what llama-quantize writes without an importance matrix).
// All float math is f32, emulated with Math.fround after every operation (one
// f64 op then one rounding equals the f32 op). `(int8_t)(x + 8.5f)` truncates
// toward zero; roundf rounds half away from zero.
//
// quantize(type, src, nPerRow) → bytes of src.length/blockElems blocks; rows
// only matter for validation (each row must be a whole number of blocks).
import { UsageError } from '../errors.ts';
import { GgmlType, typeInfo, type TypeInfo } from './table.ts';
import { f32ToBf16, f32ToF16, F16_TABLE } from './half.ts';
import { quantizeQ2K, quantizeQ3K, quantizeQ4K, quantizeQ5K, quantizeQ6K } from './quantize-k.ts';
import { quantizeIq4Nl, quantizeIq4Xs } from './quantize-iq.ts';
import { quantizeMxfp4 } from './mxfp4.ts';

const fr = Math.fround;

/** (src floats, first element, dst bytes, first byte, number of blocks). */
export type BlockEncoder = (x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number) => void;

/** ggml's roundf: half away from zero. */
export const roundf = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));

export function putF16(y: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  y[o] = h & 0xff;
  y[o + 1] = h >> 8;
}

function encF16(x: Float32Array, xo: number, y: Uint8Array, yo: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const h = f32ToF16(x[xo + i]);
    y[yo + 2 * i] = h & 0xff;
    y[yo + 2 * i + 1] = h >> 8;
  }
}

function encBf16(x: Float32Array, xo: number, y: Uint8Array, yo: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const h = f32ToBf16(x[xo + i]);
    y[yo + 2 * i] = h & 0xff;
    y[yo + 2 * i + 1] = h >> 8;
  }
}

function encF32(x: Float32Array, xo: number, y: Uint8Array, yo: number, n: number): void {
  new Float32Array(y.buffer, y.byteOffset, y.length >> 2).set(x.subarray(xo, xo + n), yo >> 2);
}

/** Symmetric 4/5-bit (Q4_0/Q5_0): d = max/-2^(b-1), q = min(2^b-1, trunc(x/d + 2^(b-1) + 0.5)). */
function encQx0(bits: 4 | 5): BlockEncoder {
  const half = bits === 4 ? 8 : 16;
  const top = 2 * half - 1;
  const bb = bits === 4 ? 18 : 22;
  const qs = bits === 4 ? 2 : 6;
  return (x, xo, y, yo, nb) => {
    for (let i = 0; i < nb; i++, xo += 32, yo += bb) {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < 32; j++) {
        const v = x[xo + j];
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = fr(max / -half);
      const id = d ? fr(1 / d) : 0;
      putF16(y, yo, d);
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const a = Math.min(top, Math.trunc(fr(fr(x[xo + j] * id) + half + 0.5)));
        const b = Math.min(top, Math.trunc(fr(fr(x[xo + 16 + j] * id) + half + 0.5)));
        y[yo + qs + j] = (a & 15) | ((b & 15) << 4);
        qh |= ((a >> 4) << j) | ((b >> 4) << (j + 16));
      }
      if (bits === 5) {
        y[yo + 2] = qh & 0xff;
        y[yo + 3] = (qh >>> 8) & 0xff;
        y[yo + 4] = (qh >>> 16) & 0xff;
        y[yo + 5] = qh >>> 24;
      }
    }
  };
}

/** Affine 4/5-bit (Q4_1/Q5_1): d = (max-min)/(2^b-1), m = min, q = trunc((x-min)/d + 0.5). */
function encQx1(bits: 4 | 5): BlockEncoder {
  const top = (1 << bits) - 1;
  const bb = bits === 4 ? 20 : 24;
  const qs = bits === 4 ? 4 : 8;
  return (x, xo, y, yo, nb) => {
    for (let i = 0; i < nb; i++, xo += 32, yo += bb) {
      let min = 3.4028234663852886e38;
      let max = -3.4028234663852886e38;
      for (let j = 0; j < 32; j++) {
        const v = x[xo + j];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const d = fr(fr(max - min) / top);
      const id = d ? fr(1 / d) : 0;
      putF16(y, yo, d);
      putF16(y, yo + 2, min);
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        // Q4_1 clamps to 15; Q5_1 does not (its (x-min)/d never passes 31.5).
        let a = Math.trunc(fr(fr(fr(x[xo + j] - min) * id) + 0.5));
        let b = Math.trunc(fr(fr(fr(x[xo + 16 + j] - min) * id) + 0.5));
        if (bits === 4) {
          a = Math.min(15, a);
          b = Math.min(15, b);
        } else {
          a &= 0xff;
          b &= 0xff;
        }
        y[yo + qs + j] = (a & 15) | ((b & 15) << 4);
        qh |= (((a >> 4) & 1) << j) | (((b >> 4) & 1) << (j + 16));
      }
      if (bits === 5) {
        y[yo + 4] = qh & 0xff;
        y[yo + 5] = (qh >>> 8) & 0xff;
        y[yo + 6] = (qh >>> 16) & 0xff;
        y[yo + 7] = qh >>> 24;
      }
    }
  };
}

function encQ8_0(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  for (let i = 0; i < nb; i++, xo += 32, yo += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putF16(y, yo, d);
    for (let j = 0; j < 32; j++) y[yo + 2 + j] = roundf(fr(x[xo + j] * id)) & 0xff;
  }
}

export const ENCODERS: ReadonlyMap<GgmlType, BlockEncoder> = new Map<GgmlType, BlockEncoder>([
  [GgmlType.F32, encF32],
  [GgmlType.F16, encF16],
  [GgmlType.BF16, encBf16],
  [GgmlType.Q4_0, encQx0(4)],
  [GgmlType.Q5_0, encQx0(5)],
  [GgmlType.Q4_1, encQx1(4)],
  [GgmlType.Q5_1, encQx1(5)],
  [GgmlType.Q8_0, encQ8_0],
  [GgmlType.Q2_K, quantizeQ2K],
  [GgmlType.Q3_K, quantizeQ3K],
  [GgmlType.Q4_K, quantizeQ4K],
  [GgmlType.Q5_K, quantizeQ5K],
  [GgmlType.Q6_K, quantizeQ6K],
  [GgmlType.IQ4_NL, quantizeIq4Nl],
  [GgmlType.IQ4_XS, quantizeIq4Xs],
  [GgmlType.MXFP4, quantizeMxfp4],
]);

/** The types `quantize` can produce. */
export const QUANTIZABLE: readonly TypeInfo[] = [...ENCODERS.keys()].map((k) => typeInfo(k) as TypeInfo);

/**
 * Quantizes src (rows of nPerRow floats, default one row) to `type`. Returns
 * the packed blocks, or writes them into `dst` at byte offset 0 if given.
 */
export function quantize(type: GgmlType, src: Float32Array, nPerRow: number = src.length, dst?: Uint8Array): Uint8Array {
  const t = typeInfo(type);
  const enc = ENCODERS.get(type);
  if (!t || !enc) throw new UsageError(`cannot quantize to ${t ? `${t.name} (id ${t.id})` : `type id ${type}`}: valid types are ${QUANTIZABLE.map((q) => q.name).join(', ')}`);
  if (nPerRow <= 0 || src.length % nPerRow !== 0) throw new UsageError(`quantize ${t.name}: ${src.length} values are not whole rows of ${nPerRow}`);
  if (nPerRow % t.blockElems !== 0) throw new UsageError(`quantize ${t.name}: row length ${nPerRow} is not a multiple of its block size ${t.blockElems}; pick Q8_0/F16 or pad the rows`);
  const nb = src.length / t.blockElems;
  const bytes = nb * t.blockBytes;
  const y = dst ?? new Uint8Array(bytes);
  if (y.length < bytes) throw new UsageError(`quantize ${t.name}: output holds ${y.length} bytes but ${bytes} are needed`);
  if (type === GgmlType.F32 && y.byteOffset % 4 !== 0) {
    y.set(new Uint8Array(src.buffer, src.byteOffset, bytes));
    return y;
  }
  enc(src, 0, y, 0, nb);
  return y;
}

/** Rounds v to what an f16 store keeps (helper for encoders that reuse a stored scale). */
export const viaF16 = (v: number): number => F16_TABLE[f32ToF16(v)];
