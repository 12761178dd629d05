// Q5_0, repacked: body 20 B = 5 words (qh: 32 high bits, then 16 B nibbles),
// d in the d plane. Element e = d * ((nibble | bit e of qh << 4) - 16).
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn dval(i: u32) -> f32 { return h2(w[info.dBase + (i >> 1u)])[i & 1u]; }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let i = row * info.nc + c;
  let b = i * 5u;
  let qh = w[b];
  let d = dval(i);
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    let q = w[b + 1u + j];
    a[j] = (u8x4(q & 0x0f0f0f0fu) + 16.0 * bits4(qh, 4u * j) - 16.0) * d;
    a[j + 4u] = (u8x4((q >> 4u) & 0x0f0f0f0fu) + 16.0 * bits4(qh, 16u + 4u * j) - 16.0) * d;
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
