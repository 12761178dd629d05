// F16, any row length (cols % 32 != 0; per-element loads, zero past the row): GGUF order, two halves per u32; element e = r * info.cols + k is half e & 1
// of word e >> 1 (rows start mid-word when info.cols is odd).
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn wh(row: u32, k: u32) -> f32 {
  let e = row * info.cols + min(k, info.cols - 1u);
  return select(0.0, h2(w[e >> 1u])[e & 1u], k < info.cols);
}
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  var a: array<vec4<f32>, 8>;
  let k0 = c * 32u;
  for (var j = 0u; j < 8u; j++) {
    let k = k0 + j * 4u;
    a[j] = vec4<f32>(wh(row, k), wh(row, k + 1u), wh(row, k + 2u), wh(row, k + 3u));
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  return dot8(deq_chunk(row, c), xs);
}
