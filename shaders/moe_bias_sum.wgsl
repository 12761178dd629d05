// gpt-oss's down-expert biases through the weighted sum: llama.cpp adds each
// expert's bias to its output (ggml_add_id) before weighting and summing, so
//   out[t, j] += Σ_s w_ts · bias[e_ts, j]        t < nTokens, j < N
// added after the down product's own weighted sum (moe.ts), with the experts
// and weights of `routes` (moe_router.wgsl). out is the residual stream.
struct Params { nTokens: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> routes: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 64u;
override N: u32;
override M: u32;
override K: u32;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * N) { return; }
  let t = i / N;
  let j = i % N;
  var v = 0.0;
  for (var s = 0u; s < K; s++) {
    let p = t * K + s;
    v += bitcast<f32>(routes[M + p]) * bias[routes[p] * N + j];
  }
  out[i] += v;
}
