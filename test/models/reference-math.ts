// The float64 references' one product, shared by reference.ts and reference-moe.ts.

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
