// The float64 references' one product, shared by reference.ts and reference-moe.ts,
// and llama.cpp's Q4_0 × Q8_0 product (the 8-bit-x tiles of batched steps).
import { f16ToF32 } from '../../src/quant/half.ts';
import { quantize } from '../../src/quant/quantize.ts';
import { GgmlType } from '../../src/quant/table.ts';

/** y[r] = Σ_c W[r*cols + c]·x[c], in f64. */
export function matvec(w: Float32Array, x: Float64Array, rows: number, cols: number, rowOffset = 0): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = (rowOffset + r) * cols;
    for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
    y[r] = s;
  }
  return y;
}

/**
 * llama.cpp's product of a Q4_0 weight with x quantized to Q8_0
 * (quantize_row_q8_0_ref, then ggml_vec_dot_q4_0_q8_0): each 32-element
 * block's integer sum Σ(q - 8)·xq is exact and is scaled by the f32 product
 * of the two f16 scales; blocks summed here in f64. w: rows × cols as stored;
 * xq: x as Q8_0 blocks (a test may pass its own).
 */
export function matvecQ4_0Q8(w: Uint8Array, x: Float32Array, rows: number, cols: number, xq = quantize(GgmlType.Q8_0, x)): Float64Array {
  const nb = cols / 32;
  const y = new Float64Array(rows);
  const i8 = (b: number) => (b << 24) >> 24;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const wo = (r * nb + b) * 18, xo = b * 34;
      let s = 0;
      for (let j = 0; j < 16; j++) {
        const q = w[wo + 2 + j];
        s += ((q & 15) - 8) * i8(xq[xo + 2 + j]) + ((q >> 4) - 8) * i8(xq[xo + 18 + j]);
      }
      y[r] += Math.fround(f16ToF32(w[wo] | (w[wo + 1] << 8)) * f16ToF32(xq[xo] | (xq[xo + 1] << 8))) * s;
    }
  }
  return y;
}
