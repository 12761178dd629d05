// Residual add: x[t] += SCALE · (NORM ? rmsnorm(y[t]) · w : y[t]) for t < nTokens;
// x, y: f32 [nTokens, DIM] (different buffers), w: f32 [DIM]. Gemma 2/3 and
// OLMo2 normalize a block's output before adding it (attn_post_norm,
// ffn_post_norm); Granite scales it by residual_scale (SCALE 1 is exact).
// The order of operations is ggml's: rms_norm·w (x·scale·w), ggml_scale, ggml_add.
// Without NORM, w is bound to y's buffer and never read.
// Dispatch: one workgroup per token (2-D if large): a strided sum of squares,
// a shared-memory tree (WG a power of two), then the strided update.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override DIM: u32;
override NORM: bool;
override EPS: f32 = 0.0;
override SCALE: f32 = 1.0;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;

{{WG_SUM}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= params.nTokens) { return; } // whole workgroups only
  let base = t * DIM;
  var inv = 1.0;
  if (NORM) {
    var s = 0.0;
    for (var i = li; i < DIM; i += WG) {
      let v = y[base + i];
      s = fma(v, v, s);
    }
    inv = 1.0 / sqrt(wg_sum(li, s) / f32(DIM) + EPS);
  }
  for (var i = li; i < DIM; i += WG) {
    var v = y[base + i];
    if (NORM) { v = v * inv * w[i]; }
    x[base + i] = x[base + i] + SCALE * v;
  }
}
