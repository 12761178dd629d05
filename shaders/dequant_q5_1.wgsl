// Q5_1, GGUF blocks (24 B = 6 words): d | m << 16, qh, 16 B nibbles.
// Element e = d * (nibble | bit e of qh << 4) + m.
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let b = (row * info.nc + c) * 6u;
  let dm = h2(w[b]);
  let qh = w[b + 1u];
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    let q = w[b + 2u + j];
    a[j] = (u8x4(q & 0x0f0f0f0fu) + 16.0 * bits4(qh, 4u * j)) * dm.x + dm.y;
    a[j + 4u] = (u8x4((q >> 4u) & 0x0f0f0f0fu) + 16.0 * bits4(qh, 16u + 4u * j)) * dm.x + dm.y;
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
