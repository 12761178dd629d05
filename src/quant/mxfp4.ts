// MXFP4 (ggml type 39, OCP microscaling FP4): blocks of 32 weights, 17 bytes =
// one E8M0 exponent byte `e` + 16 bytes of packed E2M1 nibbles (byte j: low
// nibble = element j, high nibble = element j + 16, like Q4_0).
// ggml stores the E2M1 values doubled as int8 (kvalues_mxfp4: 0 1 2 3 4 6 8 12
// and their negatives; nibble 8 is a second zero) and halves the scale to
// match: d = GGML_E8M0_TO_FP32_HALF(e) = 2^(e - 128) (e < 2: the f32
// subnormals 2^-128, 2^-127), so y = kvalues[q] * d. Every such product is
// exact in f32 (a small integer times a power of two), so the decoder below is
// bit-exact whatever the evaluation order.
const fr = Math.fround;

/** ggml's kvalues_mxfp4 (= kvalues_fp4): E2M1 values × 2, indexed by nibble. */
export const MXFP4_VALUES: Int8Array = Int8Array.of(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);

/** ggml_e8m0_to_fp32_half: 2^(e - 128) as f32 (exact; e = 255 gives 2^127, not NaN, as in ggml). */
export function e8m0Half(e: number): number {
  return 2 ** ((e & 0xff) - 128);
}

/** ggml's dequantize_row_mxfp4 over nb blocks. */
export function dequantMxfp4(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 17, oo += 32) {
    const d = e8m0Half(src[so]);
    for (let j = 0; j < 16; j++) {
      const q = src[so + 1 + j];
      out[oo + j] = MXFP4_VALUES[q & 15] * d;
      out[oo + j + 16] = MXFP4_VALUES[q >> 4] * d;
    }
  }
}

/** ggml's best_index_mxfp4: the first nibble minimising fabsf(kvalues[i]*d - x) in f32. */
function bestIndex(x: number, d: number): number {
  let best = 0;
  let bestErr = Math.abs(fr(MXFP4_VALUES[0] * d - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(fr(MXFP4_VALUES[i] * d - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/**
 * ggml's quantize_row_mxfp4_ref: e = floor(log2f(amax)) - 2 + 127 (0 for an
 * all-zero block), so the largest level (12·d = 6·2^(e-127)) covers amax up
 * to 1.5× the power of two below it; each weight takes the nearest level.
 * log2f is emulated as the f64 log2 rounded to f32 (the rounding decides
 * floor() just below a power of two). C converts the float to uint8_t; for
 * amax < 2^-125 the value is negative (undefined in C; x86 wraps it mod 256,
 * which `& 0xff` reproduces).
 */
export function quantizeMxfp4(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  for (let i = 0; i < nb; i++, xo += 32, yo += 17) {
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[xo + j]);
      if (amax < a) amax = a;
    }
    const e = amax > 0 ? (Math.floor(fr(Math.log2(amax))) - 2 + 127) & 0xff : 0;
    const d = e8m0Half(e);
    y[yo] = e;
    for (let j = 0; j < 16; j++) y[yo + 1 + j] = bestIndex(x[xo + j], d) | (bestIndex(x[xo + 16 + j], d) << 4);
  }
}
