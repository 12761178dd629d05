// The entry point of rope.wgsl: one invocation per item of rope_kv().
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  rope_kv(gid.x + gid.y * nwg.x * WG);
}
