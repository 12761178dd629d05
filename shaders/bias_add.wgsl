// Bias add in place (Qwen2's q/k/v biases): buf[OFF + t·N + i] += bias[i] for
// t < nTokens, i < N, in f32 like ggml_add. buf is one binding for the
// whole activation buffer; OFF (floats) is where the [nTokens, N] rows start.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override N: u32;
override OFF: u32;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * N) { return; }
  buf[OFF + i] = buf[OFF + i] + bias[i % N];
}
