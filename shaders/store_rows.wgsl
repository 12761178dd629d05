// A lane's R rows (row0 + r·WG) through store_row(), each dot product times k
// (the CPU kernels; store_glu.wgsl pairs a lane's rows itself).
fn store_all(row0: u32, acc: array<f32, R>, k: f32) { for (var r = 0u; r < R; r++) { store_row(row0 + r * WG, acc[r] * k); } }
