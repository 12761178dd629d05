// x as vec4s of silu(gate) · up, computed on load (ffn_down's input in decode,
// which saves the swiglu dispatch): gate starts the token row, 16-byte
// aligned; up is UP_OFF floats later (UP_OFF % 4 == 0); info.cols % 4 == 0.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
override UP_OFF: u32;
fn load_x4(base: u32, q: u32) -> vec4<f32> {
  let i = (base >> 2u) + q;
  let g = x[i];
  let v = g / (1.0 + exp(-g)) * x[i + (UP_OFF >> 2u)];
  if ({{MASK}}) { return select(vec4<f32>(0.0), v, q * 4u < info.cols); }
  return v;
}
