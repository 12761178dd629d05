// y[row] (+)= W[row, :] · x for Q4_K weights (decode), one 256-element block
// at a time. The generic matvec works per 32-element chunk, so for Q4_K it
// loaded the 16-byte header 8 times per block and each 32-byte run of nibbles
// twice (the run holds sub-blocks 2p in its low and 2p+1 in its high nibbles).
// Here each row's header is loaded once per block and each run once: 9 vec4
// loads per block and row instead of 24. On lavapipe every per-lane load is a
// gather, so load count is what sets the speed.
// Rows: as matvec_generic (R per invocation, strided by WG; rows past the end
// compute on the last row and are not stored, keeping the subgroup whole).
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}

override WG: u32 = 8u;
const R: u32 = {{R}}u;

fn xsum8(xs: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let t = ((*xs)[0] + (*xs)[1]) + ((*xs)[2] + (*xs)[3]) + ((*xs)[4] + (*xs)[5]) + ((*xs)[6] + (*xs)[7]);
  return (t.x + t.y) + (t.z + t.w);
}
// Σ q·x over 32 nibbles: bytes of q0 (elements 0..15) and q1 (16..31), shifted by sh.
fn dot_nib(q0: vec4<u32>, q1: vec4<u32>, sh: u32, xs: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let a = (q0 >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu);
  let b = (q1 >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu);
  var t = vec4<f32>(0.0);
  t = fma(u8x4(a.x), (*xs)[0], t);
  t = fma(u8x4(a.y), (*xs)[1], t);
  t = fma(u8x4(a.z), (*xs)[2], t);
  t = fma(u8x4(a.w), (*xs)[3], t);
  t = fma(u8x4(b.x), (*xs)[4], t);
  t = fma(u8x4(b.y), (*xs)[5], t);
  t = fma(u8x4(b.z), (*xs)[6], t);
  t = fma(u8x4(b.w), (*xs)[7], t);
  return (t.x + t.y) + (t.z + t.w);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.y * nwg.x;
  let row0 = g * WG * R + lid;
  let nb = info.nc >> 3u; // blocks per row
  var acc: array<f32, R>;
  for (var b = 0u; b < nb; b++) {
    var base: array<u32, R>; // vec4 index of the block
    var hdr: array<vec4<u32>, R>; // d, dmin, packed scales
    for (var r = 0u; r < R; r++) {
      base[r] = (min(row0 + r * WG, info.rows - 1u) * nb + b) * 9u;
      hdr[r] = w[base[r]];
    }
    for (var p = 0u; p < 4u; p++) {
      // x for sub-blocks 2p (low nibbles) and 2p+1 (high nibbles).
      var xa: array<vec4<f32>, 8>;
      var xb: array<vec4<f32>, 8>;
      load_xs(&xa, info.xOff, b * 8u + 2u * p, {{LANE}});
      load_xs(&xb, info.xOff, b * 8u + 2u * p + 1u, {{LANE}});
      let sa = xsum8(&xa);
      let sb = xsum8(&xb);
      for (var r = 0u; r < R; r++) {
        let q0 = w[base[r] + 1u + 2u * p];
        let q1 = w[base[r] + 2u + 2u * p];
        let ka = kscale(hdr[r], 2u * p);
        let kb = kscale(hdr[r], 2u * p + 1u);
        // Mins folded out: d·sc·Σq·x − dmin·m·Σx per sub-block.
        acc[r] += (ka.x * dot_nib(q0, q1, 0u, &xa) - ka.y * sa) + (kb.x * dot_nib(q0, q1, 4u, &xb) - kb.y * sb);
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    let row = row0 + r * WG;
    if (row < info.rows) { put(yrow(row).x, acc[r]); }
  }
}
