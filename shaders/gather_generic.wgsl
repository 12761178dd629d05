// out[t, :] = dequantized row ids[t] of W × SCALE (embedding lookup; Gemma
// scales by √dim, Granite by embedding_scale; 1 is exact). One invocation
// per 32-element chunk of one token's row; a weight split into parts is one
// dispatch per part, each writing only the tokens whose id falls in it.
// Dispatch: x = ceil(info.nc / WG), y = nTokens.
{{ENABLES}}
{{DEQUANT}}
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 64u;
override SCALE: f32 = 1.0;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * WG + lid;
  let t = wid.y;
  let id = ids[t];
  if (c >= info.nc || id < info.rowBase || id >= info.rowBase + info.rows) { return; }
  let v = deq_chunk(id - info.rowBase, c);
  let o = info.yOff + t * info.cols + c * 32u;
  for (var j = 0u; j < 8u; j++) {
    for (var k = 0u; k < 4u; k++) {
      let e = c * 32u + j * 4u + k;
      if (e < info.cols) { out[o + j * 4u + k] = v[j][k] * SCALE; }
    }
  }
}
