// Q4_0, repacked: body = 16 B of nibbles (one vec4<u32>) per block at w[i],
// i = bidx(row, block) (tiled by 32 rows, see formats.ts); the f16 scales d follow in the d plane (word dBase).
// Element j (0..15) = d * (lo nibble of byte j - 8), j + 16 = d * (hi nibble - 8).
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
fn w4(k: u32) -> vec4<u32> { return w[k]; }
// bidx() and dval() come from dequant_tiled.wgsl.
// The chunk without its scale, deq_scale(row, c) · deq_raw(row, c): the tile
// products (matmul_generic.wgsl) multiply each row's dot with a token by d
// once rather than each of its 32 values. A nibble n becomes 16·(n - 8) as a
// signed byte in place: (n ^ 8) is n - 8 in 4-bit two's complement, and in
// the byte's high half its sign is the byte's. The products are exact, so
// deq_chunk gives d·(n - 8) bit for bit.
fn deq_raw(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let q = w4(bidx(row, c));
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    a[j] = i8x4(((q[j] & 0x0f0f0f0fu) ^ 0x08080808u) << 4u);
    a[j + 4u] = i8x4((q[j] ^ 0x88888888u) & 0xf0f0f0f0u);
  }
  return a;
}
fn deq_scale(row: u32, c: u32) -> f32 { return dval(bidx(row, c)) * 0.0625; }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> { return scaled_chunk(deq_raw(row, c), deq_scale(row, c)); }
// The -8 offset is folded out: d * (Σ q·x - 8 Σ x).
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  let i = bidx(row, c);
  let q = w4(i);
  var s = vec4<f32>(0.0);
  s = fma(u8x4(q.x & 0x0f0f0f0fu), (*xs)[0], s);
  s = fma(u8x4(q.y & 0x0f0f0f0fu), (*xs)[1], s);
  s = fma(u8x4(q.z & 0x0f0f0f0fu), (*xs)[2], s);
  s = fma(u8x4(q.w & 0x0f0f0f0fu), (*xs)[3], s);
  s = fma(u8x4((q.x >> 4u) & 0x0f0f0f0fu), (*xs)[4], s);
  s = fma(u8x4((q.y >> 4u) & 0x0f0f0f0fu), (*xs)[5], s);
  s = fma(u8x4((q.z >> 4u) & 0x0f0f0f0fu), (*xs)[6], s);
  s = fma(u8x4((q.w >> 4u) & 0x0f0f0f0fu), (*xs)[7], s);
  return dval(i) * ((s.x + s.y) + (s.z + s.w) - 8.0 * xsum);
}
