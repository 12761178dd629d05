// Y[t, row] (+)= W[row, :] · X[t, :] for a tile of R rows × T tokens (prefill).
// Formats whose snippet has deq_raw/deq_scale (q4_0, q8_0) dequantize
// without the block scale and multiply each row's dot by it once (DEQ =
// deq_raw, SCALE = deq_scale): on lavapipe a 4-token Q4_0 tile measured 3–10%
// faster (Q8_0 0–3%), in the same process against the scaled chunk. The
// others: DEQ = deq_chunk, SCALE = deq_one (1.0, the same bits).
// Each invocation owns R rows (strided by WG, as in matvec_generic) and T
// tokens: per 32-element chunk it dequantizes its R rows once, then for each
// token shares one chunk of x across the subgroup and multiply-adds it into
// all R rows. On lavapipe, sharing x (a gather + 8 broadcasts) costs about as
// much as 32 multiply-adds, so R rows per shared chunk is what raises the
// arithmetic per load; the dequantized rows are reused for all T tokens.
// STORE: store_tile.wgsl (each row and token as it is), or, for the few
// tokens of a batched decode step (src/models/tile-matmul.ts, T = their
// count), store_tile_glu.wgsl: silu(gate)·up for a gate|up uploaded
// interleaved, as store_glu.wgsl does for one token.
// Dispatch (matmul_main.wgsl): x = row groups of WG·R (2-D if large), y =
// ceil(nTokens / T). A batched decode chain (src/gpu/chain.ts) calls matmul()
// itself, one row group per claimed item.
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

// Row group g, token tile ty; lid: the lane in the workgroup, lane: in the subgroup.
fn matmul(g: u32, ty: u32, lid: u32, lane: u32) {
  let row0 = g * WG * R + lid;
  let t0 = ty * T;
  let nt = params.nTokens;
  // Zeroed by hand: in a chain's loop lavapipe may keep a var's previous value.
  var acc: array<array<f32, T>, R>;
  for (var r = 0u; r < R; r++) { for (var t = 0u; t < T; t++) { acc[r][t] = 0.0; } }
  for (var c = 0u; c < info.nc; c++) {
    var wv: array<array<vec4<f32>, 8>, R>;
    var ws: array<f32, R>;
    for (var r = 0u; r < R; r++) {
      let row = min(row0 + r * WG, info.rows - 1u);
      wv[r] = {{DEQ}}(row, c);
      ws[r] = {{SCALE}}(row, c);
    }
    for (var t = 0u; t < T; t++) {
      let tok = min(t0 + t, nt - 1u);
      var xs: array<vec4<f32>, 8>;
      load_xs(&xs, info.xOff + tok * info.cols, c, lane);
      for (var r = 0u; r < R; r++) { acc[r][t] += ws[r] * dot8(wv[r], &xs); }
    }
  }
  store_tile(row0, t0, nt, acc);
}
