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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.y * nwg.x;
  let row0 = g * WG * R + lid;
  var acc: array<f32, R>;
  for (var c = 0u; c < info.nc; c++) {
    var xs: array<vec4<f32>, 8>;
    load_xs(&xs, info.xOff, c, {{LANE}});
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
