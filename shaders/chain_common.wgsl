// The shared side of a decode chain (src/gpu/chain.ts): the activation buffer
// as vec4s (the phase kernels' f32 accesses become vector components: WebGPU
// forbids two writable bindings of one buffer in a dispatch), the KV caches,
// the rope table, the step uniform, and the phase counters
// (claims[base + 2p]: items of phase p handed out, [base + 2p + 1]: finished).
struct ChainParams { nTokens: u32, pos: u32, base: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> acts4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> kcache: array<u32>;
@group(0) @binding(2) var<storage, read_write> vcache: array<u32>;
@group(0) @binding(3) var<storage, read> rope_table: array<vec2<f32>>;
@group(0) @binding(4) var<uniform> params: ChainParams;
@group(0) @binding(5) var<storage, read_write> claims: array<atomic<u32>>;
@group(0) @binding(6) var<uniform> chain: vec4<u32>; // x: this chain's first counter

// Where each token goes, for the phases' RoPE and attention: seq_uniform.wgsl
// (one token of one sequence), or for a batched chain seq_table.wgsl at binding 7.
{{SEQ}}
// A batched chain with 8-bit-x tiles: their x records (quantize_q8x.wgsl) at binding 8.
{{Q8X}}

// The next item of phase p, the same for every lane of the subgroup.
fn claim(p: u32, lid: u32) -> u32 {
  var t = 0u;
  if (lid == 0u) { t = atomicAdd(&claims[chain.x + 2u * p], 1u); }
  return subgroupBroadcast(t, 0u);
}
// After the item's stores: one more item of phase p is done.
fn finish(p: u32, lid: u32) {
  if (lid == 0u) { atomicAdd(&claims[chain.x + 2u * p + 1u], 1u); }
}
// Until all n items of phase p are done (each was claimed by a running
// workgroup, so this ends). The cap (seconds of spinning) only turns a bug
// into wrong output instead of a process that never returns.
fn wait_done(p: u32, n: u32) {
  for (var i = 0u; i < 0x40000000u; i++) { if (atomicLoad(&claims[chain.x + 2u * p + 1u]) >= n) { break; } }
}
