// Q6_K, repacked: body 208 B = 52 words per 256 (words 0..31 ql, 32..47 qh,
// 48..51 16 int8 scales), d in the d plane. Chunk cc (0..7): h = cc / 4,
// k = cc % 4; element l (0..31): low 4 bits from ql byte 64h + 32(k & 1) + l
// (low nibble if k < 2), high 2 bits = (qh byte 32h + l >> 2k) & 3;
// value = d * sc[8h + 2k + l / 16] * (q - 32).
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn dval(i: u32) -> f32 { return h2(w[info.dBase + (i >> 1u)])[i & 1u]; }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let cc = c & 7u;
  let h = cc >> 2u;
  let k = cc & 3u;
  let i = row * (info.nc >> 3u) + (c >> 3u);
  let b = i * 52u;
  let d = dval(i);
  let sh = 4u * (k >> 1u);
  var a: array<vec4<f32>, 8>;
  for (var g = 0u; g < 2u; g++) {
    let si = 8u * h + 2u * k + g;
    let sc = f32(bitcast<i32>(byte_of(w[b + 48u + (si >> 2u)], si & 3u) << 24u) >> 24u);
    let ds = d * sc;
    for (var m = 0u; m < 4u; m++) {
      let mm = 4u * g + m;
      let ql = (w[b + 16u * h + 8u * (k & 1u) + mm] >> sh) & 0x0f0f0f0fu;
      let qh = (w[b + 32u + 8u * h + mm] >> (2u * k)) & 0x03030303u;
      a[mm] = ds * (u8x4(ql | (qh << 4u)) - 32.0);
    }
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
