// x as vec4s: the token row starts 16-byte aligned and info.cols % 4 == 0.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
// q: vec4 index within the row that starts at element `base`.
fn load_x4(base: u32, q: u32) -> vec4<f32> {
  let v = x[(base >> 2u) + q];
  if ({{MASK}}) { return select(vec4<f32>(0.0), v, q * 4u < info.cols); }
  return v;
}
