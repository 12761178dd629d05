// matmul_generic.wgsl's plain store: each of the lane's R rows for each token of the tile.
fn store_tile(row0: u32, t0: u32, nt: u32, acc: array<array<f32, T>, R>) {
  for (var r = 0u; r < R; r++) {
    let row = row0 + r * WG;
    if (row < info.rows) {
      let yr = yrow(row);
      for (var t = 0u; t < T; t++) {
        if (t0 + t < nt) { put(yr.x + (t0 + t) * yr.y, acc[r][t]); }
      }
    }
  }
}
