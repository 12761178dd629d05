// gpt-oss's expert activation, llama.cpp's build_moe_ffn with expert biases
// (ggml_add_id) and LLM_FFN_SWIGLU_OAI_MOE (ggml_swiglu_oai, ggml-cpu's
// arithmetic), in place over the pairs' gate rows: for pair p = t·K + s of
// the step's tokens and j < FF, with e = the pair's expert (routes, moe_router.wgsl):
//   g = gate[p, j] + gate_b[e, j]            u = up[p, j] + up_b[e, j]
//   x = min(g, LIMIT)                        y = clamp(u, -LIMIT, LIMIT)
//   gate[p, j] = x / (1 + exp(-ALPHA·x)) · (y + 1)
// gate at float 0 and up at UP_OFF of one buffer (one binding, as swiglu.wgsl).
struct Params { nTokens: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gu: array<f32>;
@group(0) @binding(2) var<storage, read> routes: array<u32>;
@group(0) @binding(3) var<storage, read> gate_b: array<f32>;
@group(0) @binding(4) var<storage, read> up_b: array<f32>;

override WG: u32 = 64u;
override FF: u32;
override K: u32;
override UP_OFF: u32;
override ALPHA: f32 = 1.702;
override LIMIT: f32 = 7.0;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * K * FF) { return; }
  let p = i / FF;
  let j = i % FF;
  let e = routes[p];
  let x = min(gu[i] + gate_b[e * FF + j], LIMIT);
  let y = clamp(gu[UP_OFF + i] + up_b[e * FF + j], -LIMIT, LIMIT);
  gu[i] = x / (1.0 + exp(ALPHA * (-x))) * (y + 1.0);
}
