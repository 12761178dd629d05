// RMSNorm over rows: y[t] = x[t] / sqrt(mean(x[t]²) + eps) · w, for t < nTokens.
// x, y: f32 [nTokens, DIM]; w: f32 [DIM]. One workgroup per token: a strided
// sum then a shared-memory tree (WG must be a power of two; WG = 1 is a plain loop).
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override DIM: u32;
override EPS: f32;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

{{WG_SUM}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  if (t >= params.nTokens) { return; }
  let base = t * DIM;
  var s = 0.0;
  for (var i = li; i < DIM; i += WG) {
    let v = x[base + i];
    s = fma(v, v, s);
  }
  let scale = inverseSqrt(wg_sum(li, s) / f32(DIM) + EPS);
  for (var i = li; i < DIM; i += WG) {
    y[base + i] = x[base + i] * scale * w[i];
  }
}
