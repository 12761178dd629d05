// Expert products for a few tokens (decode), real GPUs: moe_matvec.wgsl's
// contract with matvec_split's shape: a workgroup owns 32 consecutive rows of
// the chosen experts and splits the row length into S = WG/32 slices; the
// slices' partial sums (already weighted, SUM) meet in workgroup memory.
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{MOE}}

override WG: u32 = 256u;
const ROWS: u32 = 32u;
const SUM: bool = {{SUM}};
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.z * nwg.x;
  let q = wid.y;
  let lane = lid % ROWS;
  let s = lid / ROWS;
  let nSlices = WG / ROWS;
  let j = g * ROWS + lane;
  let p0 = select(q, q * K, SUM);
  let np = select(1u, K, SUM);
  if (!SUM && !in_part(routes[q])) { return; } // uniform: another part owns this pair
  var acc = 0.0;
  for (var i = 0u; i < np; i++) {
    let p = p0 + i;
    let e = routes[p];
    if (!in_part(e)) { continue; }
    let row = (e - moe.firstExpert) * moe.expertRows + min(j, moe.expertRows - 1u);
    let xb = x_base(p);
    var part = 0.0;
    for (var c = s; c < info.nc; c += nSlices) {
      var xs: array<vec4<f32>, 8>;
      load_xs(&xs, xb, c, 0u);
      let t = (xs[0] + xs[1]) + (xs[2] + xs[3]) + (xs[4] + xs[5]) + (xs[6] + xs[7]);
      part += dot_chunk(row, c, &xs, (t.x + t.y) + (t.z + t.w));
    }
    acc += select(1.0, bitcast<f32>(routes[moe.m + p]), SUM) * part;
  }
  partial[lid] = acc;
  workgroupBarrier();
  if (s == 0u && j < moe.expertRows) {
    var sum = 0.0;
    for (var k = 0u; k < nSlices; k++) { sum += partial[k * ROWS + lane]; }
    put_y(moe.yOff + q * moe.expertRows + j, sum);
  }
}
