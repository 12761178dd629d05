// Logit post-processing in place over rows t < nTokens of x [nTokens, N]:
// v = v·SCALE (Granite: 1/logit_scale; 1 is exact), then if SOFTCAP > 0
// (Gemma 2's final-logit soft-capping) v = SOFTCAP·tanh(v·(1/SOFTCAP)), the
// ggml_scale / ggml_tanh / ggml_scale sequence of llama.cpp.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override N: u32;
override SCALE: f32 = 1.0;
override SOFTCAP: f32 = 0.0;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

{{TANH}}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * N) { return; }
  var v = x[i] * SCALE;
  // 1/SOFTCAP is an override-expression: dividing by SOFTCAP = 0 would fail the pipeline.
  if (SOFTCAP > 0.0) { v = SOFTCAP * tanh_safe(v * (1.0 / select(1.0, SOFTCAP, SOFTCAP > 0.0))); }
  x[i] = v;
}
