// tanh that cannot overflow and keeps its relative precision near 0. exp only
// ever sees -2|z| ≤ 0, so any z gives a value in [-1, 1] (WGSL's builtin tanh
// inherits its accuracy from sinh/cosh, which overflow past |z| ≈ 89: inf/inf
// is NaN where an implementation computes it that way). Below |z| = 0.25,
// where 1 − e^(−2|z|) would lose digits to cancellation, the odd Taylor
// series to z⁹ (truncation error < 2e-9 relative there) is used instead
// (lavapipe's builtin tanh, measured: 1.7e-4 relative error at z = 1e-4).
// attention_kv.wgsl holds a copy (a decode chain includes that file verbatim,
// so it cannot be templated); test/models/kernels-post.test.ts checks they match.
fn tanh_safe(z: f32) -> f32 {
  let a = abs(z);
  let e = exp(-2.0 * a);
  let big = sign(z) * ((1.0 - e) / (1.0 + e));
  let z2 = z * z;
  let small = z * (1.0 + z2 * (-1.0 / 3.0 + z2 * (2.0 / 15.0 + z2 * (-17.0 / 315.0 + z2 * (62.0 / 2835.0)))));
  return select(big, small, a < 0.25);
}
