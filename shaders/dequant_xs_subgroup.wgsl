// One chunk (32 values) of x shared across the subgroup: lane l loads vec4
// l % 8 and the others take it by subgroupBroadcast with a constant lane, so
// each lane issues one load instead of eight (lavapipe cannot tell that a
// loop-indexed storage read is uniform). Needs subgroup size >= 8.
// Lane l's vec4 v (vec4 l % 8 of the chunk) to every lane: xs[j] = lane j's v.
fn share_xs(xs: ptr<function, array<vec4<f32>, 8>>, v: vec4<f32>) {
  (*xs)[0] = subgroupBroadcast(v, 0u);
  (*xs)[1] = subgroupBroadcast(v, 1u);
  (*xs)[2] = subgroupBroadcast(v, 2u);
  (*xs)[3] = subgroupBroadcast(v, 3u);
  (*xs)[4] = subgroupBroadcast(v, 4u);
  (*xs)[5] = subgroupBroadcast(v, 5u);
  (*xs)[6] = subgroupBroadcast(v, 6u);
  (*xs)[7] = subgroupBroadcast(v, 7u);
}
fn load_xs(xs: ptr<function, array<vec4<f32>, 8>>, base: u32, c: u32, lane: u32) { share_xs(xs, load_x4(base, c * 8u + (lane & 7u))); }
// The same, each vec4 multiplied by s before it is shared (one multiply per
// lane instead of one per lane and vec4): kernels that leave a quant in place,
// at bit 8k of its word, pre-scale x by 2^-8k (see matvec_q4_k.wgsl).
fn load_xs_scaled(xs: ptr<function, array<vec4<f32>, 8>>, base: u32, c: u32, lane: u32, s: vec4<f32>) {
  share_xs(xs, load_x4(base, c * 8u + (lane & 7u)) * s);
}
// A dequantized chunk dotted with the matching chunk of x, shared across the subgroup.
fn dot_x(a: array<vec4<f32>, 8>, base: u32, c: u32, lane: u32) -> f32 {
  var xs: array<vec4<f32>, 8>;
  load_xs(&xs, base, c, lane);
  return dot8(a, &xs);
}
// A per-lane partial over x, summed over the chunk's lanes (each loaded an eighth).
fn xs_total(s: f32) -> f32 { return subgroupAdd(s); }
