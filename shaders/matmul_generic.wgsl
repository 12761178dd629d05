// Y[t, row] (+)= W[row, :] · X[t, :] for a tile of T tokens (prefill). Each
// invocation owns one row and T tokens: a dequantized 32-weight chunk stays in
// registers and is reused for all T tokens of the tile.
// Dispatch: x = row groups of WG (2-D if large), y = ceil(nTokens / T).
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
struct Params { nTokens: u32 }
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 8u;
override ACC: bool = false;
const T: u32 = {{T}}u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.z * nwg.x;
  let rowU = g * WG + lid;
  let row = min(rowU, info.rows - 1u);
  let t0 = wid.y * T;
  let nt = params.nTokens;
  var acc: array<f32, T>;
  for (var c = 0u; c < info.nc; c++) {
    let wv = deq_chunk(row, c);
    for (var t = 0u; t < T; t++) {
      let tok = min(t0 + t, nt - 1u);
      acc[t] += dot_x(wv, info.xOff + tok * info.cols, c, {{LANE}});
    }
  }
  if (rowU < info.rows) {
    for (var t = 0u; t < T; t++) {
      let tok = t0 + t;
      if (tok < nt) {
        let o = info.yOff + tok * info.yStride + info.rowBase + rowU;
        if (ACC) { y[o] += acc[t]; } else { y[o] = acc[t]; }
      }
    }
  }
}
