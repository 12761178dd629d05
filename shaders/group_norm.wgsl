// RMSNorm of groups in place (Qwen3/Gemma 3 per-head q/k norm: GROUPS = heads,
// SIZE = headDim; OLMo2's whole-vector q/k norm: GROUPS = 1): at OFF (floats)
// of buf lie [nTokens, GROUPS, SIZE] f32, and each (token, group) vector x
// becomes x · (1/sqrt(mean(x²) + EPS)) · w, w: f32 [SIZE] shared by the groups.
// As ggml_compute_forward_rms_norm_f32 + mul, except that ggml sums the
// squares in double; here each lane sums a strided part in f32 (fma) and the
// parts meet in a shared-memory tree (WG a power of two).
// Dispatch: one workgroup per (token, group), 2-D if large. Each lane rewrites
// only the elements it read, after the barrier, so in place is safe.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override GROUPS: u32;
override SIZE: u32;
override EPS: f32;
override OFF: u32;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

{{WG_SUM}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let item = wid.x + wid.y * nwg.x; // t · GROUPS + group
  if (item >= params.nTokens * GROUPS) { return; } // whole workgroups only
  let base = OFF + item * SIZE;
  var s = 0.0;
  for (var i = li; i < SIZE; i += WG) {
    let v = buf[base + i];
    s = fma(v, v, s);
  }
  let scale = 1.0 / sqrt(wg_sum(li, s) / f32(SIZE) + EPS);
  for (var i = li; i < SIZE; i += WG) {
    buf[base + i] = buf[base + i] * scale * w[i];
  }
}
