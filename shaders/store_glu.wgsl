// One token's gate|up rows (decode) stored as silu(gate)·up, which saves the
// swiglu dispatch. The weight's rows are interleaved in blocks of G = WG·R/2
// (Info.ilv; weights.ts uploadConcat): in each workgroup's block of WG·R rows
// the first half are gate rows and the second half the up rows of the same
// index, so a lane's rows r < R/2 are gate rows whose up rows are its r + R/2.
// The result goes to the gate region (yrow), where swiglu.wgsl leaves it too.
fn store_all(row0: u32, acc: array<f32, R>, k: f32) {
  for (var r = 0u; r < R / 2u; r++) {
    let row = row0 + r * WG;
    if (row < info.rows) {
      let g = acc[r] * k;
      put(yrow(row).x, g / (1.0 + exp(-g)) * (acc[r + R / 2u] * k));
    }
  }
}
