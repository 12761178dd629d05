// RMSNorm of token rows by one subgroup of 8 lanes, for a batched decode chain
// (src/gpu/chain.ts), where a norm is a phase of the layer's one dispatch
// rather than a dispatch of its own. It sums in rmsnorm.wgsl's order at its
// CPU workgroup size of 8 (lane l: fma over x[l], x[l+8], …; then lanes 4, 2
// and 1 apart, as wg_sum's tree), so the chain normalises bit for bit as the
// rmsnorm dispatch does.
//   x, y: f32 rows [nTokens, DIM] at X_OFF and Y_OFF; nw: f32 [DIM].
override DIM: u32;
override EPS: f32;
override X_OFF: u32;
override Y_OFF: u32;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> nw: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn rmsnorm_row(t: u32, lane: u32) {
  let xb = X_OFF + t * DIM;
  let yb = Y_OFF + t * DIM;
  var s = 0.0;
  for (var i = lane; i < DIM; i += 8u) {
    let v = x[xb + i];
    s = fma(v, v, s);
  }
  s += subgroupShuffleXor(s, 4u);
  s += subgroupShuffleXor(s, 2u);
  s += subgroupShuffleXor(s, 1u);
  let scale = inverseSqrt(s / f32(DIM) + EPS);
  for (var i = lane; i < DIM; i += 8u) {
    y[yb + i] = x[xb + i] * scale * nw[i];
  }
}
