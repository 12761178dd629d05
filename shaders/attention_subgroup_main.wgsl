// The entry point of attention_subgroup.wgsl: workgroup idx of the (possibly 2D) grid.
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let idx = wid.x + wid.y * nwg.x;
  if (idx >= params.nTokens * (N_HEADS / HG)) { return; } // whole workgroups only
  attention(idx, lane);
}
