// y[row] (+)= W[row, :] · x for one token (decode). Any format: the dequant
// snippet supplies dot_chunk. Each invocation owns R rows, so a chunk of x
// (loaded once, shared across the subgroup) feeds R rows; on lavapipe that
// beats cross-lane reductions (barriers are coroutine switches). A workgroup
// owns WG*R consecutive rows and lane l takes rows l, l+WG, ...: for a given r
// adjacent lanes read adjacent rows, which tiled layouts (formats.ts) store in
// adjacent records.
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{STORE}}

override WG: u32 = 8u;
const R: u32 = {{R}}u;

// Workgroup g's rows; lid: the lane in the workgroup, lane: in the subgroup
// (matvec_main.wgsl, or a decode chain's main, is the entry point).
fn matvec(g: u32, lid: u32, lane: u32) {
  x_begin(); // a persistent kernel runs several row groups per invocation
  let row0 = g * WG * R + lid;
  // Zeroed by hand: a chain calls matvec() in a loop (see matmul_generic.wgsl).
  var acc: array<f32, R>;
  for (var r = 0u; r < R; r++) { acc[r] = 0.0; }
  for (var c = 0u; c < info.nc; c++) {
    var xs: array<vec4<f32>, 8>;
    load_xs(&xs, info.xOff, c, lane);
    let t = (xs[0] + xs[1]) + (xs[2] + xs[3]) + (xs[4] + xs[5]) + (xs[6] + xs[7]);
    let xsum = (t.x + t.y) + (t.z + t.w);
    for (var r = 0u; r < R; r++) {
      // Rows past the end read a valid row and are not stored: every lane must
      // stay in the loop for the subgroup broadcast.
      let row = min(row0 + r * WG, info.rows - 1u);
      acc[r] += dot_chunk(row, c, &xs, xsum);
    }
  }
  let k = x_scale(xs_total(x_part())); // uniform control flow: it may reduce across the subgroup
  store_all(row0, acc, k);
}
