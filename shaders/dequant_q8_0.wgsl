// Q8_0, repacked: body = 32 int8 (two vec4<u32>) per block at w[2i], w[2i+1],
// i = bidx(row, block) (tiled by 32 rows, see formats.ts); f16 scales in the d plane (word dBase).
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
fn w4(k: u32) -> vec4<u32> { return w[k]; }
// bidx() and dval() come from dequant_tiled.wgsl.
// The chunk without its scale (see dequant_q4_0.wgsl): deq_chunk = deq_scale · deq_raw.
fn deq_raw(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let i = bidx(row, c);
  let q0 = w4(2u * i);
  let q1 = w4(2u * i + 1u);
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    a[j] = i8x4(q0[j]);
    a[j + 4u] = i8x4(q1[j]);
  }
  return a;
}
fn deq_scale(row: u32, c: u32) -> f32 { return dval(bidx(row, c)); }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> { return scaled_chunk(deq_raw(row, c), deq_scale(row, c)); }
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 {
  let i = bidx(row, c);
  let q0 = w4(2u * i);
  let q1 = w4(2u * i + 1u);
  var s = vec4<f32>(0.0);
  s = fma(i8x4(q0.x), (*xs)[0], s);
  s = fma(i8x4(q0.y), (*xs)[1], s);
  s = fma(i8x4(q0.z), (*xs)[2], s);
  s = fma(i8x4(q0.w), (*xs)[3], s);
  s = fma(i8x4(q1.x), (*xs)[4], s);
  s = fma(i8x4(q1.y), (*xs)[5], s);
  s = fma(i8x4(q1.z), (*xs)[6], s);
  s = fma(i8x4(q1.w), (*xs)[7], s);
  return dval(i) * ((s.x + s.y) + (s.z + s.w));
}
