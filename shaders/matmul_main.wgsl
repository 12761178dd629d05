// The entry point of matmul_generic.wgsl: workgroup (x + z·nx, y) is row group x + z·nx, token tile y.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  matmul(wid.x + wid.z * nwg.x, wid.y, lid, {{LANE}});
}
