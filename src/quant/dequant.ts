// CPU reference dequantizers, bit-for-bit equal to ggml's dequantize_row_*.
// Float32 arithmetic is emulated exactly: a product/sum of two f32 values is
// computed in f64 and rounded once with Math.fround (or by the Float32Array
// store), which equals the f32 operation since f64 holds > 2*24+2 bits. ggml's
// reference C is not FMA-contracted (checked against ggml's own output in
// test/quant/vectors.test.ts), so `x*d + m` is two rounded operations.
//
// Block layouts (little-endian, see table.ts for sizes): each function takes the
// raw bytes of whole blocks and writes n = blocks*blockElems floats.
import { UsageError } from '../errors.ts';
import { GgmlType, supportedType, typeInfo } from './table.ts';
import { F16_TABLE, readF16 as h16 } from './half.ts';
import { dequantMxfp4 } from './mxfp4.ts';
import { IQ4NL_VALUES, dequantIq4Xs, dequantQ2K, dequantQ3K, dequantQ4K, dequantQ5K, dequantQ6K } from './dequant-k.ts';

const fr = Math.fround;

/** (bytes, byte offset of first block, out, out offset, number of blocks). */
export type BlockDecoder = (src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number) => void;

function dequantF32(src: Uint8Array, so: number, out: Float32Array, oo: number, n: number): void {
  if ((src.byteOffset + so) % 4 === 0) out.set(new Float32Array(src.buffer, src.byteOffset + so, n), oo);
  else out.set(new Float32Array(src.slice(so, so + 4 * n).buffer), oo);
}

function dequantF16(src: Uint8Array, so: number, out: Float32Array, oo: number, n: number): void {
  for (let i = 0; i < n; i++) out[oo + i] = F16_TABLE[src[so + 2 * i] | (src[so + 2 * i + 1] << 8)];
}

function dequantBf16(src: Uint8Array, so: number, out: Float32Array, oo: number, n: number): void {
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = (src[so + 2 * i] | (src[so + 2 * i + 1] << 8)) << 16;
  out.set(new Float32Array(u.buffer), oo);
}

// Q4_0: d(f16) qs[16]; y[j] = (lo-8)*d, y[j+16] = (hi-8)*d.
function dequantQ4_0(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 18, oo += 32) {
    const d = h16(src, so);
    for (let j = 0; j < 16; j++) {
      const q = src[so + 2 + j];
      out[oo + j] = ((q & 15) - 8) * d;
      out[oo + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

// Q4_1: d m qs[16]; y = q*d + m.
function dequantQ4_1(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 20, oo += 32) {
    const d = h16(src, so);
    const m = h16(src, so + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[so + 4 + j];
      out[oo + j] = fr((q & 15) * d) + m;
      out[oo + j + 16] = fr((q >> 4) * d) + m;
    }
  }
}

// Q5_0: d qh(u32) qs[16]; bit j of qh is the 5th bit of y[j], bit j+16 of y[j+16].
function dequantQ5_0(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 22, oo += 32) {
    const d = h16(src, so);
    const qh = (src[so + 2] | (src[so + 3] << 8) | (src[so + 4] << 16) | (src[so + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[so + 6 + j];
      out[oo + j] = (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
      out[oo + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
  }
}

// Q5_1: d m qh qs[16]; y = q*d + m.
function dequantQ5_1(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 24, oo += 32) {
    const d = h16(src, so);
    const m = h16(src, so + 2);
    const qh = (src[so + 4] | (src[so + 5] << 8) | (src[so + 6] << 16) | (src[so + 7] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[so + 8 + j];
      out[oo + j] = fr(((q & 15) | (((qh >>> j) & 1) << 4)) * d) + m;
      out[oo + j + 16] = fr(((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d) + m;
    }
  }
}

// Q8_0: d qs[32] (int8); y = q*d.
function dequantQ8_0(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 34, oo += 32) {
    const d = h16(src, so);
    for (let j = 0; j < 32; j++) out[oo + j] = ((src[so + 2 + j] << 24) >> 24) * d;
  }
}

// IQ4_NL: d qs[16]; y = d * table[nibble].
function dequantIq4Nl(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 18, oo += 32) {
    const d = h16(src, so);
    for (let j = 0; j < 16; j++) {
      const q = src[so + 2 + j];
      out[oo + j] = d * IQ4NL_VALUES[q & 15];
      out[oo + j + 16] = d * IQ4NL_VALUES[q >> 4];
    }
  }
}

/** Block decoders by type id (for plain float types a "block" is one element). */
export const DECODERS: ReadonlyMap<GgmlType, BlockDecoder> = new Map<GgmlType, BlockDecoder>([
  [GgmlType.F32, dequantF32],
  [GgmlType.F16, dequantF16],
  [GgmlType.BF16, dequantBf16],
  [GgmlType.Q4_0, dequantQ4_0],
  [GgmlType.Q4_1, dequantQ4_1],
  [GgmlType.Q5_0, dequantQ5_0],
  [GgmlType.Q5_1, dequantQ5_1],
  [GgmlType.Q8_0, dequantQ8_0],
  [GgmlType.Q2_K, dequantQ2K],
  [GgmlType.Q3_K, dequantQ3K],
  [GgmlType.Q4_K, dequantQ4K],
  [GgmlType.Q5_K, dequantQ5K],
  [GgmlType.Q6_K, dequantQ6K],
  [GgmlType.IQ4_NL, dequantIq4Nl],
  [GgmlType.IQ4_XS, dequantIq4Xs],
  [GgmlType.MXFP4, dequantMxfp4],
]);

/**
 * Decodes n elements (a multiple of the type's block size) of `type` from
 * `bytes` into `out` (allocated if absent). Throws GgufError for a type qllm
 * cannot decode, UsageError for a bad n or short input.
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  const t = supportedType(type, 'dequantize');
  const fn = DECODERS.get(type);
  if (!fn) throw new UsageError(`no CPU decoder for ${t.name} (id ${t.id}): use one of ${[...DECODERS.keys()].map((k) => typeInfo(k)?.name).join(', ')}`);
  if (!Number.isInteger(n) || n < 0 || n % t.blockElems !== 0) throw new UsageError(`dequantize ${t.name}: element count ${n} is not a multiple of its block size ${t.blockElems}`);
  const nb = n / t.blockElems;
  if (bytes.length < nb * t.blockBytes) throw new UsageError(`dequantize ${t.name}: ${n} elements need ${nb * t.blockBytes} bytes but ${bytes.length} were given`);
  const o = out ?? new Float32Array(n);
  if (o.length < n) throw new UsageError(`dequantize ${t.name}: output holds ${o.length} floats but ${n} are needed`);
  fn(bytes, 0, o, 0, nb);
  return o;
}
