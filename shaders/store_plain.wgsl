// One token's output row (matvec): written as it is (rows past the part skipped).
fn store_row(row: u32, v: f32) { if (row < info.rows) { put(yrow(row).x, v); } }
fn store_pair(row: u32, v: f32, other: f32) { store_row(row, v); }
// A lane's R rows (row0 + r·WG), each dot product times k.
fn store_all(row0: u32, acc: array<f32, R>, k: f32) { for (var r = 0u; r < R; r++) { store_row(row0 + r * WG, acc[r] * k); } }
