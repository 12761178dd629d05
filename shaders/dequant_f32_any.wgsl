// F32, any row length (cols % 32 != 0; per-element loads, zero past the row): GGUF order, element k of local row r at w[r * info.cols + k].
@group(0) @binding(0) var<storage, read> w: array<f32>;
fn wf(row: u32, k: u32) -> f32 { return select(0.0, w[row * info.cols + min(k, info.cols - 1u)], k < info.cols); }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  var a: array<vec4<f32>, 8>;
  let k0 = c * 32u;
  for (var j = 0u; j < 8u; j++) {
    let k = k0 + j * 4u;
    a[j] = vec4<f32>(wf(row, k), wf(row, k + 1u), wf(row, k + 2u), wf(row, k + 3u));
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  return dot8(deq_chunk(row, c), xs);
}
