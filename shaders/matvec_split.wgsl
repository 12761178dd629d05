// y[row] (+)= W[row, :] · x for one token (decode), for real GPUs: a workgroup
// owns 32 consecutive rows and splits their length into S = WG/32 slices.
// Thread (lane, s) takes row 32g + lane and chunks s, s+S, s+2S, ...: the 32
// lanes of a slice read 32 adjacent rows' blocks, which the tiled layouts
// (Q4_0, Q8_0: formats.ts) store side by side, so the reads coalesce, and
// they all read the same chunk of x. The S partial sums meet in workgroup
// memory. (matvec_generic, one invocation per row and no split, suits CPU
// rasterisers, where barriers are coroutine switches; a GPU wants the threads.)
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{STORE}}

override WG: u32 = 256u;
const ROWS: u32 = 32u;
const R: u32 = 1u; // rows per thread (the store snippets' store_all; this kernel calls store_row)
var<workgroup> part: array<f32, WG>;
var<workgroup> partx: array<f32, WG / ROWS>; // per slice: its part of a sum over x (x_part, RMSNorm on load)
var<workgroup> rowv: array<f32, ROWS>; // the finished rows, so row r can see row r ^ 1 (store_pair: RoPE)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let lane = lid % ROWS;
  let s = lid / ROWS;
  let nSlices = WG / ROWS;
  let rowU = g * ROWS + lane;
  let row = min(rowU, info.rows - 1u);
  var acc = 0.0;
  // A uniform loop (the barrier below needs uniform control flow); the slice test is inside.
  for (var c0 = 0u; c0 < info.nc; c0 += nSlices) {
    let c = c0 + s;
    if (c < info.nc) {
      var xs: array<vec4<f32>, 8>;
      load_xs(&xs, info.xOff, c, 0u);
      let t = (xs[0] + xs[1]) + (xs[2] + xs[3]) + (xs[4] + xs[5]) + (xs[6] + xs[7]);
      acc += dot_chunk(row, c, &xs, (t.x + t.y) + (t.z + t.w));
    }
  }
  part[lid] = acc;
  if (lane == 0u) { partx[s] = x_part(); } // the slices loaded disjoint chunks of x
  workgroupBarrier();
  var v = 0.0;
  if (s == 0u) {
    var sum = 0.0;
    var xt = 0.0;
    for (var k = 0u; k < nSlices; k++) {
      sum += part[k * ROWS + lane];
      xt += partx[k];
    }
    v = sum * x_scale(xt);
    rowv[lane] = v;
  }
  workgroupBarrier();
  if (s == 0u) { store_pair(rowU, v, rowv[lane ^ 1u]); }
}
