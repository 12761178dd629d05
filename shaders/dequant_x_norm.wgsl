// x as vec4s through RMSNorm, applied on load (decode's products that follow a
// norm, which saves the rmsnorm dispatch): x is multiplied by the norm weight
// as it is loaded, each lane sums the squares of what it loads, and the kernel
// multiplies its dot products by x_scale(Σx²) = 1/sqrt(mean(x²) + eps) at the
// end, W·(s·g⊙x) = s·(W·(g⊙x)). x_part() is what this thread summed; the
// kernel adds the parts up over threads that loaded disjoint parts of x: the
// lanes of a subgroup (xs_total), or the row slices of matvec_split. x: the token row, 16-byte aligned; nw: the
// norm weight, f32 [info.cols].
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> nw: array<vec4<f32>>;
override NORM_EPS: f32;
var<private> ssq: f32 = 0.0;
fn load_x4(base: u32, q: u32) -> vec4<f32> {
  var v = x[(base >> 2u) + q];
  if ({{MASK}}) { v = select(vec4<f32>(0.0), v, q * 4u < info.cols); }
  ssq += dot(v, v);
  return v * nw[q];
}
fn x_part() -> f32 { return ssq; }
fn x_begin() { ssq = 0.0; }
fn x_scale(total: f32) -> f32 { return inverseSqrt(total / f32(info.cols) + NORM_EPS); }
