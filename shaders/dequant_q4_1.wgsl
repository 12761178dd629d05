// Q4_1, GGUF blocks (20 B = 5 words): word 0 = d | m << 16 (f16), words 1..4 =
// 16 B of nibbles. Element j = d * lo(q[j]) + m, j + 16 = d * hi(q[j]) + m.
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let b = (row * info.nc + c) * 5u;
  let dm = h2(w[b]);
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    let q = w[b + 1u + j];
    a[j] = u8x4(q & 0x0f0f0f0fu) * dm.x + dm.y;
    a[j + 4u] = u8x4((q >> 4u) & 0x0f0f0f0fu) * dm.x + dm.y;
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
