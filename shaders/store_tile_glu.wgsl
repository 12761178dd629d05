// matmul_generic.wgsl's store for gate|up uploaded interleaved (store_glu.wgsl
// for several tokens): the lane's rows r < R/2 are gate rows whose up rows
// are its r + R/2; each token's silu(gate)·up goes to the gate region.
fn store_tile(row0: u32, t0: u32, nt: u32, acc: array<array<f32, T>, R>) {
  for (var r = 0u; r < R / 2u; r++) {
    let row = row0 + r * WG;
    if (row < info.rows) {
      let yr = yrow(row);
      for (var t = 0u; t < T; t++) {
        if (t0 + t < nt) {
          let g = acc[r][t];
          put(yr.x + (t0 + t) * yr.y, g / (1.0 + exp(-g)) * acc[r + R / 2u][t]);
        }
      }
    }
  }
}
