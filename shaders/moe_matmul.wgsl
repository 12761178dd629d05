// Expert products for many tokens (prefill), grouped by expert so each
// expert's rows are dequantized once per tile of its pairs, not once per
// token: workgroup (row group, tile i) takes tile i of moe_router.wgsl's
// grouping (one expert e, up to G pairs of its list) and computes
//   y[p, j] = W[e, j, :] · x(p)  for the tile's pairs p and its R rows j,
// like matmul_generic: per 32-element chunk, R dequantized rows are shared
// by T of the tile's pairs; a tile of G = SUB·T pairs is SUB workgroups
// (y = tile·SUB + sub-tile). Tiles past nTiles, sub-tiles past the tile's
// count, and tiles of experts in another part return at once (the grid is an
// upper bound: the host never learns the counts). The weighted sum over a
// token's slots is moe_combine.wgsl.
// Dispatch: x = row groups (2-D over x, z), y = maxTiles(nTokens·K)·SUB.
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{MOE}}

override WG: u32 = 8u;
const T: u32 = {{T}}u;
const R: u32 = {{RM}}u;
const SUB: u32 = {{SUB}}u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.z * nwg.x;
  let tile = wid.y / SUB;
  let t0 = (wid.y % SUB) * T;
  let tiles = 3u * moe.m;
  if (tile >= routes[tiles]) { return; } // uniform
  let td = routes[tiles + 1u + 2u * tile];
  let first = 2u * moe.m + routes[tiles + 2u + 2u * tile];
  let e = td & 0xffffu;
  let cnt = td >> 16u;
  if (t0 >= cnt || !in_part(e)) { return; } // uniform
  let base = (e - moe.firstExpert) * moe.expertRows;
  let row0 = g * WG * R + lid;
  var xb: array<u32, T>;
  for (var t = 0u; t < T; t++) { xb[t] = x_base(routes[first + min(t0 + t, cnt - 1u)]); }
  var acc: array<array<f32, T>, R>;
  for (var c = 0u; c < info.nc; c++) {
    var wv: array<array<vec4<f32>, 8>, R>;
    for (var r = 0u; r < R; r++) { wv[r] = deq_chunk(base + min(row0 + r * WG, moe.expertRows - 1u), c); }
    for (var t = 0u; t < T; t++) {
      var xs: array<vec4<f32>, 8>;
      load_xs(&xs, xb[t], c, {{LANE}});
      for (var r = 0u; r < R; r++) { acc[r][t] += dot8(wv[r], &xs); }
    }
  }
  for (var r = 0u; r < R; r++) {
    let j = row0 + r * WG;
    if (j < moe.expertRows) {
      for (var t = 0u; t < T; t++) {
        if (t0 + t < cnt) { put_y(moe.yOff + routes[first + t0 + t] * moe.expertRows + j, acc[r][t]); }
      }
    }
  }
}
