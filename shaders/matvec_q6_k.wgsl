// y[row] (+)= W[row, :] · x for Q6_K weights (decode), one 256-element block
// at a time. Q6_K (ggml) stores each 128-element half as 64 bytes of low
// nibbles (ql), 32 bytes of high bit pairs (qh) and 8 int8 scales; quarter k
// of a half takes ql bytes 32(k & 1).. (low nibble if k < 2) and qh bits 2k.
// The generic matvec works per 32-element chunk and so loaded every qh run 4
// times, every ql run twice and the scales 8 times per block. Here a row's
// scales and d are loaded once per block, qh once per half and each ql run
// once for the two quarters it serves (k and k + 2): 14 vec4 loads per block
// and row instead of 40 (lavapipe: every per-lane load is a gather).
// Layout (repacked, formats.ts): body 13 vec4 per block (0..7 ql, 8..11 qh,
// 12 scales), d in the d plane. Rows as matvec_generic.
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{STORE}}

override WG: u32 = 8u;
const R: u32 = {{R}}u;

// Sums of x over the two 16-element halves of a chunk.
fn xhalves(xs: ptr<function, array<vec4<f32>, 8>>) -> vec2<f32> {
  let a = ((*xs)[0] + (*xs)[1]) + ((*xs)[2] + (*xs)[3]);
  let b = ((*xs)[4] + (*xs)[5]) + ((*xs)[6] + (*xs)[7]);
  return vec2<f32>((a.x + a.y) + (a.z + a.w), (b.x + b.y) + (b.z + b.w));
}
// (Σ q·x over elements 0..15, over 16..31) for 32 six-bit quants: ql nibbles
// (shift lsh) with qh bit pairs (shift hsh) on top.
fn dot6(l0: vec4<u32>, l1: vec4<u32>, h0: vec4<u32>, h1: vec4<u32>, lsh: u32, hsh: u32, xs: ptr<function, array<vec4<f32>, 8>>) -> vec2<f32> {
  let m = vec4<u32>(0x0f0f0f0fu);
  let m2 = vec4<u32>(0x03030303u);
  let a = ((l0 >> vec4<u32>(lsh)) & m) | (((h0 >> vec4<u32>(hsh)) & m2) << vec4<u32>(4u));
  let b = ((l1 >> vec4<u32>(lsh)) & m) | (((h1 >> vec4<u32>(hsh)) & m2) << vec4<u32>(4u));
  var t0 = vec4<f32>(0.0);
  var t1 = vec4<f32>(0.0);
  t0 = fma(u8x4(a.x), (*xs)[0], t0);
  t0 = fma(u8x4(a.y), (*xs)[1], t0);
  t0 = fma(u8x4(a.z), (*xs)[2], t0);
  t0 = fma(u8x4(a.w), (*xs)[3], t0);
  t1 = fma(u8x4(b.x), (*xs)[4], t1);
  t1 = fma(u8x4(b.y), (*xs)[5], t1);
  t1 = fma(u8x4(b.z), (*xs)[6], t1);
  t1 = fma(u8x4(b.w), (*xs)[7], t1);
  return vec2<f32>((t0.x + t0.y) + (t0.z + t0.w), (t1.x + t1.y) + (t1.z + t1.w));
}
// Scales 2k and 2k+1 (int8) of the 16 in sc.
fn sc2(sc: vec4<u32>, k: u32) -> vec2<f32> {
  let v = sc[k >> 1u] >> (16u * (k & 1u));
  return vec2<f32>(f32(bitcast<i32>(v << 24u) >> 24u), f32(bitcast<i32>(v << 16u) >> 24u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.y * nwg.x;
  let row0 = g * WG * R + lid;
  let nb = info.nc >> 3u; // blocks per row
  var acc: array<f32, R>;
  for (var b = 0u; b < nb; b++) {
    var base: array<u32, R>; // vec4 index of the block body
    var sc: array<vec4<u32>, R>; // 16 int8 scales
    var d: array<f32, R>;
    for (var r = 0u; r < R; r++) {
      let i = min(row0 + r * WG, info.rows - 1u) * nb + b;
      base[r] = i * 13u;
      sc[r] = w[base[r] + 12u];
      d[r] = dval(i);
    }
    for (var h = 0u; h < 2u; h++) {
      var qh0: array<vec4<u32>, R>;
      var qh1: array<vec4<u32>, R>;
      for (var r = 0u; r < R; r++) {
        qh0[r] = w[base[r] + 8u + 2u * h];
        qh1[r] = w[base[r] + 9u + 2u * h];
      }
      for (var k = 0u; k < 2u; k++) {
        // Quarters k (low nibbles) and k + 2 (high nibbles) share one ql run.
        var xa: array<vec4<f32>, 8>;
        var xb: array<vec4<f32>, 8>;
        load_xs(&xa, info.xOff, b * 8u + 4u * h + k, {{LANE}});
        load_xs(&xb, info.xOff, b * 8u + 4u * h + k + 2u, {{LANE}});
        let sa = xhalves(&xa);
        let sb = xhalves(&xb);
        for (var r = 0u; r < R; r++) {
          let l0 = w[base[r] + 4u * h + 2u * k];
          let l1 = w[base[r] + 4u * h + 2u * k + 1u];
          let ta = dot6(l0, l1, qh0[r], qh1[r], 0u, 2u * k, &xa) - 32.0 * sa;
          let tb = dot6(l0, l1, qh0[r], qh1[r], 4u, 2u * k + 4u, &xb) - 32.0 * sb;
          let ca = sc2(sc[r], 4u * h + k);
          let cb = sc2(sc[r], 4u * h + k + 2u);
          acc[r] += d[r] * (dot(ca, ta) + dot(cb, tb));
        }
      }
    }
  }
  let k = x_scale(xs_total(x_part())); // uniform control flow: it may reduce across the subgroup
  store_all(row0, acc, k);
}
