// One chunk (32 values) of x, each lane loading all eight vec4s itself.
fn load_xs(xs: ptr<function, array<vec4<f32>, 8>>, base: u32, c: u32, lane: u32) {
  for (var j = 0u; j < 8u; j++) { (*xs)[j] = load_x4(base, c * 8u + j); }
}
// The same, each vec4 multiplied by s (see dequant_xs_subgroup.wgsl).
fn load_xs_scaled(xs: ptr<function, array<vec4<f32>, 8>>, base: u32, c: u32, lane: u32, s: vec4<f32>) {
  for (var j = 0u; j < 8u; j++) { (*xs)[j] = load_x4(base, c * 8u + j) * s; }
}
// A dequantized chunk dotted with the matching chunk of x (no staging array).
fn dot_x(a: array<vec4<f32>, 8>, base: u32, c: u32, lane: u32) -> f32 {
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < 8u; j++) { s = fma(a[j], load_x4(base, c * 8u + j), s); }
  return (s.x + s.y) + (s.z + s.w);
}
// A per-lane partial over x: each lane loaded all of it.
fn xs_total(s: f32) -> f32 { return s; }
