// Y[t, row] (+)= W[row, :] · X[t, :] for the few tokens of a batched decode
// step (src/models/tile-matmul.ts): matmul_generic.wgsl's loop with a tile of
// T tokens, and a store of its own (STORE: store_tile.wgsl, or
// store_tile_glu.wgsl: silu(gate)·up for gate|up uploaded interleaved, as
// store_glu.wgsl does for one token). Per token it adds the same partial sums
// in the same order as matmul_generic.
// Dispatch: x = row groups of WG·R (2-D if large), y = ceil(nTokens / T).
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
struct Params { nTokens: u32 }
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 8u;
const T: u32 = {{T}}u;
const R: u32 = {{RM}}u;
{{STORE}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.z * nwg.x;
  let row0 = g * WG * R + lid;
  let t0 = wid.y * T;
  let nt = params.nTokens;
  var acc: array<array<f32, T>, R>;
  for (var c = 0u; c < info.nc; c++) {
    var wv: array<array<vec4<f32>, 8>, R>;
    for (var r = 0u; r < R; r++) { wv[r] = deq_chunk(min(row0 + r * WG, info.rows - 1u), c); }
    for (var t = 0u; t < T; t++) {
      let tok = min(t0 + t, nt - 1u);
      var xs: array<vec4<f32>, 8>;
      load_xs(&xs, info.xOff + tok * info.cols, c, {{LANE}});
      for (var r = 0u; r < R; r++) { acc[r][t] += dot8(wv[r], &xs); }
    }
  }
  store_tile(row0, t0, nt, acc);
}
