// Argmax of one row of logits: out[0] = index of the largest of x[ROW*N .. ROW*N+N)
// (lowest index on ties), with ROW = nTokens-1 (the last token). One workgroup:
// a strided scan, then a shared-memory tree. WG must be a power of two.
// ROWS (batched decode, one token per sequence): workgroup r does row r into
// out[r], for nTokens workgroups.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override N: u32;
override WG: u32 = 64;
override ROWS: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> bestV: array<f32, WG>;
var<workgroup> bestI: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {
  let row = select(params.nTokens - 1u, wid.x, ROWS);
  let base = row * N;
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  for (var i = li; i < N; i += WG) {
    let v = x[base + i];
    if (v > bv) { bv = v; bi = i; }
  }
  bestV[li] = bv;
  bestI[li] = bi;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (li < stride) {
      let ov = bestV[li + stride];
      let oi = bestI[li + stride];
      if (ov > bestV[li] || (ov == bestV[li] && oi < bestI[li])) {
        bestV[li] = ov;
        bestI[li] = oi;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) { out[select(0u, row, ROWS)] = bestI[0]; }
}
