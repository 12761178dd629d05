// SwiGLU activation in place: gate[i] = silu(gate[i]) · up[i] over nTokens·FFN
// values; gate at 0 and up at UP_OFF (floats) of one buffer (one binding: WebGPU
// forbids a buffer bound both writable and read-only in a dispatch).
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override FFN: u32;
override WG: u32 = 64;
override UP_OFF: u32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gu: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * FFN) { return; }
  let g = gu[i];
  gu[i] = g / (1.0 + exp(-g)) * gu[UP_OFF + i];
}
