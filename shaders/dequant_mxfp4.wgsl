// MXFP4, repacked (formats.ts): body = 16 B of nibbles (one vec4<u32>) per
// block at w[i], i = bidx(row, block) (tiled by 32 rows, as Q4_0); the e8m0
// exponents follow in the e plane, one byte per block, four per u32 (word dBase).
// Element j (0..15) = KV[lo nibble of byte j]·d, j + 16 = KV[hi nibble]·d, with
// ggml's doubled E2M1 levels KV = 0 1 2 3 4 6 8 12, nibble 8+ negative, and its
// half scale d = 2^(e - 128). Each product is exact in f32, as in ggml.
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
fn w4(k: u32) -> vec4<u32> { return w[k]; }
// bidx() comes from dequant_tiled.wgsl (whose f16 dval() this format does not use).
// ggml_e8m0_to_fp32_half: e < 2 gives the f32 subnormals 2^-128, 2^-127 (a
// GPU may flush them to zero; no real weight has them).
fn e8m0_half(e: u32) -> f32 {
  return select(bitcast<f32>((e - 1u) << 23u), bitcast<f32>(0x00200000u << min(e, 1u)), e < 2u);
}
fn mx_scale(i: u32) -> f32 { let wi = info.dBase + (i >> 2u); return e8m0_half(byte_of(w[wi >> 2u][wi & 3u], i & 3u)); }
// Four nibbles at bits s, s+8, s+16, s+24 of v as KV levels: the magnitudes
// 0 1 2 3 4 6 8 12 are the nibbles of the constant 0xC8643210 (no table
// lookup, which lavapipe turns into scratch memory), the sign is bit 3, and
// nibble 8 gives +0 like ggml's int8 0.
fn fp4x4(v: u32, s: u32) -> vec4<f32> {
  let n = (vec4<u32>(v) >> (vec4<u32>(0u, 8u, 16u, 24u) + vec4<u32>(s))) & vec4<u32>(15u);
  let mag = vec4<i32>((vec4<u32>(0xC8643210u) >> ((n & vec4<u32>(7u)) << vec4<u32>(2u))) & vec4<u32>(15u));
  return vec4<f32>(select(mag, -mag, n >= vec4<u32>(8u)));
}
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let i = bidx(row, c);
  let q = w4(i);
  let d = mx_scale(i);
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    a[j] = fp4x4(q[j], 0u) * d;
    a[j + 4u] = fp4x4(q[j], 4u) * d;
  }
  return a;
}
// The scale is folded out: d · Σ KV·x.
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  let i = bidx(row, c);
  let q = w4(i);
  var s = vec4<f32>(0.0);
  s = fma(fp4x4(q.x, 0u), (*xs)[0], s);
  s = fma(fp4x4(q.y, 0u), (*xs)[1], s);
  s = fma(fp4x4(q.z, 0u), (*xs)[2], s);
  s = fma(fp4x4(q.w, 0u), (*xs)[3], s);
  s = fma(fp4x4(q.x, 4u), (*xs)[4], s);
  s = fma(fp4x4(q.y, 4u), (*xs)[5], s);
  s = fma(fp4x4(q.z, 4u), (*xs)[6], s);
  s = fma(fp4x4(q.w, 4u), (*xs)[7], s);
  return mx_scale(i) * ((s.x + s.y) + (s.z + s.w));
}
