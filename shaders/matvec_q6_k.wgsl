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

// x pre-scaled for 6-bit quants left in place: byte j of a combined word
// holds one quant at bit 8j, so masking the word (no per-byte shift) leaves
// q·2^(8j); x scaled by 2^-8j gives the same products bit for bit.
const XQ = vec4<f32>(1.0, 0.00390625, 1.52587890625e-05, 5.9604644775390625e-08); // 2^0, 2^-8, 2^-16, 2^-24
const MB = vec4<u32>(0xffu, 0xff00u, 0xff0000u, 0xff000000u);
const M4 = vec4<u32>(0x0f0f0f0fu);
const M30 = vec4<u32>(0x30303030u);

// Sums of (unscaled) x over the two 16-element halves of a pre-scaled chunk.
fn xhalves(xs: ptr<function, array<vec4<f32>, 8>>) -> vec2<f32> {
  let inv = vec4<f32>(1.0, 256.0, 65536.0, 16777216.0);
  let a = (((*xs)[0] + (*xs)[1]) + ((*xs)[2] + (*xs)[3])) * inv;
  let b = (((*xs)[4] + (*xs)[5]) + ((*xs)[6] + (*xs)[7])) * inv;
  return vec2<f32>((a.x + a.y) + (a.z + a.w), (b.x + b.y) + (b.z + b.w));
}
// (Σ q·x over elements 0..15, over 16..31) for 32 six-bit quants given as
// combined words (4 bits from ql, 2 from qh at bits 4-5 of each byte).
fn dot6(a: vec4<u32>, b: vec4<u32>, xs: ptr<function, array<vec4<f32>, 8>>) -> vec2<f32> {
  let t0 = fma_masked(a, MB, xs, 0u, vec4<f32>(0.0));
  let t1 = fma_masked(b, MB, xs, 4u, vec4<f32>(0.0));
  return vec2<f32>((t0.x + t0.y) + (t0.z + t0.w), (t1.x + t1.y) + (t1.z + t1.w));
}
// Scales 2k and 2k+1 (int8) of the 16 in sc.
fn sc2(sc: vec4<u32>, k: u32) -> vec2<f32> {
  let v = sc[k >> 1u] >> (16u * (k & 1u));
  return vec2<f32>(f32(bitcast<i32>(v << 24u) >> 24u), f32(bitcast<i32>(v << 16u) >> 24u));
}

// Workgroup g's rows; lid: the lane in the workgroup, lane: in the subgroup
// (matvec_main.wgsl, or a decode chain's main, is the entry point).
fn matvec(g: u32, lid: u32, lane: u32) {
  x_begin(); // a persistent kernel runs several row groups per invocation
  let row0 = g * WG * R + lid;
  let nb = info.nc >> 3u; // blocks per row
  // Zeroed by hand: a chain calls matvec() in a loop (see matmul_generic.wgsl).
  var acc: array<f32, R>;
  for (var r = 0u; r < R; r++) { acc[r] = 0.0; }
  for (var b = 0u; b < nb; b++) {
    var base: array<u32, R>; // vec4 index of the block body
    var sc: array<vec4<u32>, R>; // 16 int8 scales
    var d: array<f32, R>;
    for (var r = 0u; r < R; r++) {
      let i = tiled(min(row0 + r * WG, info.rows - 1u), b, nb);
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
        load_xs_scaled(&xa, info.xOff, b * 8u + 4u * h + k, lane, XQ);
        load_xs_scaled(&xb, info.xOff, b * 8u + 4u * h + k + 2u, lane, XQ);
        let sa = xhalves(&xa);
        let sb = xhalves(&xb);
        // qh bit pairs of quarter k moved to bits 4-5: << 4 - 2k; of quarter k + 2: >> 2k.
        let ua = vec4<u32>(4u - 2u * k);
        let ub = vec4<u32>(2u * k);
        for (var r = 0u; r < R; r++) {
          let l0 = w[base[r] + 4u * h + 2u * k];
          let l1 = w[base[r] + 4u * h + 2u * k + 1u];
          let ta = dot6((l0 & M4) | ((qh0[r] << ua) & M30), (l1 & M4) | ((qh1[r] << ua) & M30), &xa) - 32.0 * sa;
          let tb = dot6(((l0 >> vec4<u32>(4u)) & M4) | ((qh0[r] >> ub) & M30), ((l1 >> vec4<u32>(4u)) & M4) | ((qh1[r] >> ub) & M30), &xb) - 32.0 * sb;
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
