// Q4_K, GGUF blocks (144 B = 9 vec4<u32> per 256): vec4 0 = (d | dmin << 16,
// then the 12 bytes of packed 6-bit scales/mins), vec4 1..8 = 128 B nibbles.
// Sub-block s (0..7, 32 elements) uses nibble bytes 32(s/2).. (vec4 1 + 2(s/2)
// and the next), low nibbles if s is even; value = d*sc[s]*q - dmin*m[s], where
// for s < 4 sc = q[s] & 63, m = q[s+4] & 63, else sc = lo(q[s+4]) | (q[s-4] >> 6) << 4,
// m = hi(q[s+4]) | (q[s] >> 6) << 4 (q = the 12 scale bytes).
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
// (d * sc, dmin * m) for sub-block s; hdr = vec4 0 of the block.
fn kscale(hdr: vec4<u32>, s: u32) -> vec2<f32> {
  let dm = h2(hdr.x);
  // scale bytes 0..11 live in hdr.y, hdr.z, hdr.w
  var sc: u32;
  var mn: u32;
  if (s < 4u) {
    sc = byte_of(hdr.y, s) & 63u;
    mn = byte_of(hdr.z, s) & 63u;
  } else {
    let b = byte_of(hdr.w, s - 4u);
    sc = (b & 15u) | ((byte_of(hdr.y, s - 4u) >> 6u) << 4u);
    mn = (b >> 4u) | ((byte_of(hdr.z, s - 4u) >> 6u) << 4u);
  }
  return vec2<f32>(dm.x * f32(sc), dm.y * f32(mn));
}
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let s = c & 7u;
  let b = (row * (info.nc >> 3u) + (c >> 3u)) * 9u;
  let dm = kscale(w[b], s);
  let sh = 4u * (s & 1u);
  let q0 = w[b + 1u + 2u * (s >> 1u)];
  let q1 = w[b + 2u + 2u * (s >> 1u)];
  var a: array<vec4<f32>, 8>;
  for (var m = 0u; m < 4u; m++) {
    a[m] = u8x4((q0[m] >> sh) & 0x0f0f0f0fu) * dm.x - dm.y;
    a[m + 4u] = u8x4((q1[m] >> sh) & 0x0f0f0f0fu) * dm.x - dm.y;
  }
  return a;
}
// Min folded out: d*sc * Σ q·x - dmin*m * Σ x.
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  let s = c & 7u;
  let b = (row * (info.nc >> 3u) + (c >> 3u)) * 9u;
  let dm = kscale(w[b], s);
  let sh = 4u * (s & 1u);
  let q0 = (w[b + 1u + 2u * (s >> 1u)] >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu);
  let q1 = (w[b + 2u + 2u * (s >> 1u)] >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu);
  var t = vec4<f32>(0.0);
  t = fma(u8x4(q0.x), (*xs)[0], t);
  t = fma(u8x4(q0.y), (*xs)[1], t);
  t = fma(u8x4(q0.z), (*xs)[2], t);
  t = fma(u8x4(q0.w), (*xs)[3], t);
  t = fma(u8x4(q1.x), (*xs)[4], t);
  t = fma(u8x4(q1.y), (*xs)[5], t);
  t = fma(u8x4(q1.z), (*xs)[6], t);
  t = fma(u8x4(q1.w), (*xs)[7], t);
  return dm.x * ((t.x + t.y) + (t.z + t.w)) - dm.y * xsum;
}
