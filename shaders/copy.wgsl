// The bandwidth reference for bench-kernels: dst[i] = src[i] over vec4s.
// A grid-stride loop: NWG workgroups of WG lanes sweep the buffer, adjacent
// lanes on adjacent vec4s (a few long-running workgroups suit lavapipe).
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * WG;
  let n = arrayLength(&dst);
  for (var i = gid.x; i < n; i += stride) { dst[i] = src[i]; }
}
