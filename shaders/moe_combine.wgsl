// The weighted sum of a token's k expert outputs (llama.cpp's ffn_moe_weighted
// and the adds after it), after the prefill matmul:
//   out[OUT_OFF + t·N + j] (+)= Σ_s w_ts · y[Y_OFF + (t·K + s)·N + j]
// for t < nTokens, j < N, with the weights from `routes` (moe_router.wgsl).
// ACC adds into out (the residual stream); y and out are separate buffers.
struct Params { nTokens: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> routes: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 64u;
override N: u32;
override M: u32;
override Y_OFF: u32 = 0u;
override OUT_OFF: u32 = 0u;
override ACC: bool = false;
const K: u32 = {{K}}u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * N) { return; }
  let t = i / N;
  let j = i % N;
  var v = 0.0;
  for (var s = 0u; s < K; s++) { v += bitcast<f32>(routes[M + t * K + s]) * y[Y_OFF + (t * K + s) * N + j]; }
  if (ACC) { v += out[OUT_OFF + i]; }
  out[OUT_OFF + i] = v;
}
