// x as scalars: any row length and offset.
@group(0) @binding(1) var<storage, read> x: array<f32>;
fn load_x1(i: u32, k: u32) -> f32 { return select(0.0, x[i], k < info.cols); }
fn load_x4(base: u32, q: u32) -> vec4<f32> {
  let k = q * 4u;
  let i = base + k;
  return vec4<f32>(load_x1(i, k), load_x1(i + 1u, k + 1u), load_x1(i + 2u, k + 2u), load_x1(i + 3u, k + 3u));
}
