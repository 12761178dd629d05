// IEEE half (f16) and bfloat16 conversions, bit-compatible with ggml:
// f16→f32 is exact (a 64 Ki-entry table, like ggml_table_f32_f16); f32→f16
// rounds to nearest even with NaN → 0x7E00|sign (ggml's generic
// GGML_COMPUTE_FP32_TO_FP16); f32→bf16 rounds to nearest even and quiets NaNs
// by setting bit 6 (ggml_compute_fp32_to_bf16), subnormals kept.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** All 65536 f16 bit patterns as f32 (exact). */
export const F16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    let bits: number;
    if (exp === 0x1f) bits = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) bits = sign;
    else {
      // Subnormal: value = mant * 2^-24, exactly representable in f32.
      t[h] = (sign ? -mant : mant) * 2 ** -24;
      continue;
    }
    u32[0] = bits >>> 0;
    t[h] = f32[0];
  }
  return t;
})();

/** The f16 at byte offset o of b (little-endian), as f32. */
export const readF16 = (b: Uint8Array, o: number): number => F16_TABLE[b[o] | (b[o + 1] << 8)];

export function f16ToF32(h: number): number {
  return F16_TABLE[h & 0xffff];
}

/** Bits of f32 `x` (x is first rounded to f32). */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** f32 from its bit pattern. */
export function bitsF32(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

/** Round-to-nearest-even right shift of a non-negative integer by s (1..31) bits. */
function rneShift(m: number, s: number): number {
  const q = m >>> s;
  const rem = m & ((1 << s) - 1);
  const half = 1 << (s - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

/** f32 → f16 bits, round to nearest even; overflow → ±inf; NaN → 0x7E00|sign. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 112; // f16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal (2^-25 itself ties to 0)
    // Subnormal: units of 2^-24; rounding up may carry into the smallest normal, which is the right bit pattern.
    return sign | rneShift(mant | 0x800000, 14 - e);
  }
  // Normal: a carry out of the mantissa bumps the exponent (possibly to inf), as it should.
  return sign | rneShift((e << 23) | mant, 13);
}

export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** f32 → bf16 bits, round to nearest even; NaN quieted (bit 6 set). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 64) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Rounds each value to f16 precision and back (what storing as F16 does to it). */
export function roundF16(x: number): number {
  return F16_TABLE[f32ToF16(x)];
}
