// BF16, rows a multiple of 32 long: GGUF order read as vec4<u32> (8 values);
// a bf16 is the top half of an f32.
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
fn bf2(v: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(v << 16u), bitcast<f32>(v & 0xffff0000u)); }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let b = (row * info.cols) / 8u + c * 4u;
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    let q = w[b + j];
    a[2u * j] = vec4<f32>(bf2(q.x), bf2(q.y));
    a[2u * j + 1u] = vec4<f32>(bf2(q.z), bf2(q.w));
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
