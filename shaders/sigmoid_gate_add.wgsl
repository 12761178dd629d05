// A sigmoid-gated scale-and-add, one gate per token:
//   out[t, j] += σ(w · g[t]) · y[t, j]        t < nTokens, j < N
// g: f32 [nTokens, DIM] (the gate's input), w: f32 [DIM], y and out: f32
// [nTokens, N]. Qwen2-MoE's shared expert (llama.cpp's qwen2moe.cpp): g = xn,
// w = ffn_gate_inp_shexp, y = the shared expert's output, out = the residual
// stream. llama.cpp writes σ(v) as silu(v)/v = (v·σ(v))/v; 1/(1 + e^-v) is the
// same to an f32 rounding (and stays finite at v = 0, where silu(v)/v is 0/0).
// One workgroup per token: a strided dot product, a shared-memory tree
// (wg_sum, WG a power of two), then every invocation scales a stride of the row.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override DIM: u32;
override N: u32;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

{{WG_SUM}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  if (t >= params.nTokens) { return; }
  var s = 0.0;
  for (var i = li; i < DIM; i += WG) { s = fma(w[i], g[t * DIM + i], s); }
  let gate = 1.0 / (1.0 + exp(-wg_sum(li, s)));
  for (var j = li; j < N; j += WG) { out[t * N + j] += gate * y[t * N + j]; }
}
