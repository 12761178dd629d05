// Q6_K, repacked: body 208 B = 13 vec4<u32> per 256 (vec4 0..7 ql, 8..11 qh,
// 12 the 16 int8 scales), d in the d plane. Chunk cc (0..7): h = cc / 4,
// k = cc % 4; element l (0..31): low 4 bits from ql byte 64h + 32(k & 1) + l
// (low nibble if k < 2), high 2 bits = (qh byte 32h + l >> 2k) & 3;
// value = d * sc[8h + 2k + l / 16] * (q - 32). Blocks lie in the 32-row tiled
// order (block index from tiled(), d from dval(): dequant_tiled.wgsl).
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
// The 32 six-bit quants of chunk cc of the block at vec4 b, as 8 words of 4 bytes.
fn q6(b: u32, cc: u32) -> array<vec4<u32>, 2> {
  let h = cc >> 2u;
  let k = cc & 3u;
  let lb = b + 4u * h + 2u * (k & 1u);
  let hb = b + 8u + 2u * h;
  let sh = vec4<u32>(4u * (k >> 1u));
  let hs = vec4<u32>(2u * k);
  let m = vec4<u32>(0x0f0f0f0fu);
  let m2 = vec4<u32>(0x03030303u);
  return array<vec4<u32>, 2>(
    ((w[lb] >> sh) & m) | (((w[hb] >> hs) & m2) << vec4<u32>(4u)),
    ((w[lb + 1u] >> sh) & m) | (((w[hb + 1u] >> hs) & m2) << vec4<u32>(4u)));
}
// (d * sc) for the two 16-element halves of chunk cc.
fn q6scales(b: u32, i: u32, cc: u32) -> vec2<f32> {
  let si = 2u * cc; // = 8h + 2k
  let sw = w[b + 12u][si >> 2u];
  let s0 = bitcast<i32>(byte_of(sw, si & 3u) << 24u) >> 24u;
  let s1 = bitcast<i32>(byte_of(sw, (si & 3u) + 1u) << 24u) >> 24u;
  let d = dval(i);
  return vec2<f32>(d * f32(s0), d * f32(s1));
}
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let cc = c & 7u;
  let i = tiled(row, c >> 3u, info.nc >> 3u);
  let b = i * 13u;
  let q = q6(b, cc);
  let ds = q6scales(b, i, cc);
  var a: array<vec4<f32>, 8>;
  for (var m = 0u; m < 4u; m++) {
    a[m] = ds.x * (u8x4(q[0][m]) - 32.0);
    a[m + 4u] = ds.y * (u8x4(q[1][m]) - 32.0);
  }
  return a;
}
// -32 folded out per 16-element half: ds * (Σ q·x - 32 Σ x).
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  let cc = c & 7u;
  let i = tiled(row, c >> 3u, info.nc >> 3u);
  let b = i * 13u;
  let q = q6(b, cc);
  let ds = q6scales(b, i, cc);
  var t0 = vec4<f32>(0.0);
  var t1 = vec4<f32>(0.0);
  t0 = fma(u8x4(q[0].x), (*xs)[0], t0);
  t0 = fma(u8x4(q[0].y), (*xs)[1], t0);
  t0 = fma(u8x4(q[0].z), (*xs)[2], t0);
  t0 = fma(u8x4(q[0].w), (*xs)[3], t0);
  t1 = fma(u8x4(q[1].x), (*xs)[4], t1);
  t1 = fma(u8x4(q[1].y), (*xs)[5], t1);
  t1 = fma(u8x4(q[1].z), (*xs)[6], t1);
  t1 = fma(u8x4(q[1].w), (*xs)[7], t1);
  let x0 = ((*xs)[0] + (*xs)[1]) + ((*xs)[2] + (*xs)[3]);
  let x1 = ((*xs)[4] + (*xs)[5]) + ((*xs)[6] + (*xs)[7]);
  return ds.x * ((t0.x + t0.y) + (t0.z + t0.w) - 32.0 * ((x0.x + x0.y) + (x0.z + x0.w)))
       + ds.y * ((t1.x + t1.y) + (t1.z + t1.w) - 32.0 * ((x1.x + x1.y) + (x1.z + x1.w)));
}
