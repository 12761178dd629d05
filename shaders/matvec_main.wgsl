// The entry point of the CPU matvec kernels (matvec_generic, matvec_q4_k,
// matvec_q6_k): workgroup g of the (possibly 2D) grid runs matvec(g).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  matvec(wid.x + wid.y * nwg.x, lid, {{LANE}});
}
