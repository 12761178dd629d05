// Expert products for a few tokens (decode), CPU rasterisers: for workgroup
// y index q and every row j of the chosen experts,
//   SUM false: q = pair p = t·K + s:  y[p, j] = W[e_p, j, :] · x(p)
//   SUM true:  q = token t:           y[t, j] = Σ_s w_ts · W[e_ts, j, :] · x(t, s)
// (the weighted sum of the k expert outputs, fused: ffn_down into the residual).
// Only the chosen experts' rows are read; ids and weights come from `routes`
// on the GPU. As in matvec_generic, each lane owns R rows strided by WG and
// one chunk of x is shared across the subgroup. A part (binding) of the
// weight holds whole experts: pairs whose expert lies in another part are
// skipped here (SUM false: not written; SUM true: this part's sum is added,
// the first part writing). Dispatch: x = row groups (2-D over x, z), y = pairs or tokens.
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{MOE}}

override WG: u32 = 8u;
const R: u32 = {{R}}u;
const SUM: bool = {{SUM}};

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.z * nwg.x;
  let q = wid.y;
  let row0 = g * WG * R + lid;
  let p0 = select(q, q * K, SUM);
  let np = select(1u, K, SUM);
  if (!SUM && !in_part(routes[q])) { return; } // uniform: another part owns this pair
  var acc: array<f32, R>;
  for (var i = 0u; i < np; i++) {
    let p = p0 + i;
    let e = routes[p];
    if (!in_part(e)) { continue; }
    let base = (e - moe.firstExpert) * moe.expertRows;
    let xb = x_base(p);
    // Zeroed by hand: a zero-initialised `var` in a loop body kept the last
    // iteration's values here (Dawn/lavapipe), though WGSL says it starts at 0.
    var part: array<f32, R>;
    for (var r = 0u; r < R; r++) { part[r] = 0.0; }
    for (var c = 0u; c < info.nc; c++) {
      var xs: array<vec4<f32>, 8>;
      load_xs(&xs, xb, c, {{LANE}});
      let t = (xs[0] + xs[1]) + (xs[2] + xs[3]) + (xs[4] + xs[5]) + (xs[6] + xs[7]);
      let xsum = (t.x + t.y) + (t.z + t.w);
      for (var r = 0u; r < R; r++) {
        // Rows past the expert's end read a valid row and are not stored.
        part[r] += dot_chunk(base + min(row0 + r * WG, moe.expertRows - 1u), c, &xs, xsum);
      }
    }
    let wt = select(1.0, bitcast<f32>(routes[moe.m + p]), SUM);
    for (var r = 0u; r < R; r++) { acc[r] += wt * part[r]; }
  }
  for (var r = 0u; r < R; r++) {
    let j = row0 + r * WG;
    if (j < moe.expertRows) { put_y(moe.yOff + q * moe.expertRows + j, acc[r]); }
  }
}
