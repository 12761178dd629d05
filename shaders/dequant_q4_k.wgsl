// Q4_K, GGUF blocks (144 B = 36 words per 256): word 0 = d | dmin << 16,
// words 1..3 = 12 B of packed 6-bit scales/mins, words 4..35 = 128 B nibbles.
// Sub-block s (0..7, 32 elements) uses bytes 32(s/2).. of the nibbles, low
// nibbles if s is even; value = d * sc[s] * q - dmin * m[s], where for s < 4
// sc = q[s] & 63, m = q[s+4] & 63, else sc = lo(q[s+4]) | (q[s-4] >> 6) << 4,
// m = hi(q[s+4]) | (q[s] >> 6) << 4 (q = the 12 scale bytes).
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn kbyte(b: u32, k: u32) -> u32 { return byte_of(w[b + 1u + (k >> 2u)], k & 3u); }
// (d * sc, dmin * m) for sub-block s of the block at word b.
fn kscale(b: u32, s: u32) -> vec2<f32> {
  let dm = h2(w[b]);
  var sc: u32;
  var mn: u32;
  if (s < 4u) {
    sc = kbyte(b, s) & 63u;
    mn = kbyte(b, s + 4u) & 63u;
  } else {
    sc = (kbyte(b, s + 4u) & 15u) | ((kbyte(b, s - 4u) >> 6u) << 4u);
    mn = (kbyte(b, s + 4u) >> 4u) | ((kbyte(b, s) >> 6u) << 4u);
  }
  return vec2<f32>(dm.x * f32(sc), dm.y * f32(mn));
}
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let s = c & 7u;
  let b = (row * (info.nc >> 3u) + (c >> 3u)) * 36u;
  let dm = kscale(b, s);
  let sh = 4u * (s & 1u);
  var a: array<vec4<f32>, 8>;
  for (var m = 0u; m < 8u; m++) {
    let q = w[b + 4u + 8u * (s >> 1u) + m];
    a[m] = u8x4((q >> sh) & 0x0f0f0f0fu) * dm.x - dm.y;
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
