// matmul_generic.wgsl's store for gate|up uploaded interleaved (store_glu.wgsl
// for several tokens): in blocks of G = GR·WG rows, gate rows then their up
// rows, so of the lane's rows (strided by WG) r is a gate row when
// (r / GR) is even, and r + GR is its up row; each token's silu(gate)·up
// goes to the gate region. R is a multiple of 2·GR.
const GR: u32 = {{GR}}u;
fn store_tile(row0: u32, t0: u32, nt: u32, acc: array<array<f32, T>, R>) {
  for (var r = 0u; r < R; r++) {
    let row = row0 + r * WG;
    if ((r / GR) % 2u == 0u && row < info.rows) {
      let yr = yrow(row);
      for (var t = 0u; t < T; t++) {
        if (t0 + t < nt) {
          let g = acc[r][t];
          put(yr.x + (t0 + t) * yr.y, g / (1.0 + exp(-g)) * acc[r + GR][t]);
        }
      }
    }
  }
}
