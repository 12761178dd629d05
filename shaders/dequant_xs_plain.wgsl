// One chunk (32 values) of x, each lane loading all eight vec4s itself.
fn load_xs(xs: ptr<function, array<vec4<f32>, 8>>, base: u32, c: u32, lane: u32) {
  for (var j = 0u; j < 8u; j++) { (*xs)[j] = load_x4(base, c * 8u + j); }
}
