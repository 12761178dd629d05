// F32, rows a multiple of 32 long: GGUF order read as vec4s; chunk c of local
// row r is w[(r * cols + 32c) / 4 + j], j = 0..7.
@group(0) @binding(0) var<storage, read> w: array<vec4<f32>>;
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let b = (row * info.cols) / 4u + c * 8u;
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 8u; j++) { a[j] = w[b + j]; }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
