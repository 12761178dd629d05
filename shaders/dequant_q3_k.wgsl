// Q3_K, repacked: body 108 B = 27 words per 256 (words 0..7 hmask, 8..23 the
// 2-bit quants, 24..26 the 12 packed 6-bit scales), d in the d plane. Chunk cc
// (0..7) of a block: h = cc / 4, j = cc % 4: quant bytes 32h.. at shift 2j,
// high bit = bit 4h + j of hmask byte; value = d * (sc - 32) * (q - 4 * !hbit).
// Scale k (0..15): low 4 bits = k < 8 ? lo(scales[k]) : hi(scales[k - 8]),
// high 2 bits = (scales[8 + k % 4] >> 2 * (k / 4)) & 3.
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn dval(i: u32) -> f32 { return h2(w[info.dBase + (i >> 1u)])[i & 1u]; }
fn sbyte(b: u32, k: u32) -> u32 { return byte_of(w[b + 24u + (k >> 2u)], k & 3u); }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let cc = c & 7u;
  let h = cc >> 2u;
  let j = cc & 3u;
  let i = row * (info.nc >> 3u) + (c >> 3u);
  let b = i * 27u;
  let d = dval(i);
  var a: array<vec4<f32>, 8>;
  for (var g = 0u; g < 2u; g++) {
    let k = 8u * h + 2u * j + g;
    let lo = select(sbyte(b, k - 8u) >> 4u, sbyte(b, k) & 15u, k < 8u);
    let hi = (sbyte(b, 8u + (k & 3u)) >> (2u * (k >> 2u))) & 3u;
    let dl = d * (f32(lo | (hi << 4u)) - 32.0);
    for (var m = 0u; m < 4u; m++) {
      let q = w[b + 8u + 8u * h + 4u * g + m];
      let hm = w[b + 4u * g + m];
      a[4u * g + m] = dl * (u8x4((q >> (2u * j)) & 0x03030303u) + 4.0 * bit4(hm, 4u * h + j) - 4.0);
    }
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
