// Causal attention over the KV cache. Token t (position p = tok_pos(t) in its
// sequence, whose position j is cache slot tok_base(t) + j: seq_uniform.wgsl
// or seq_table.wgsl) attends to positions window_start(p)..p (0..p without a WINDOW) with a
// one-pass online softmax in f32, scores soft-capped if SOFTCAP (both in
// attention_kv.wgsl); GQA:
// kv head = head / (N_HEADS/N_KV). One invocation per (token, head, chunk of
// CHUNK positions); lanes next to each other are heads of one kv group, so
// they read the same K/V rows.
//   q: f32 [nTokens, N_HEADS*HEAD_DIM] (roped)   out: f32 [nTokens, N_HEADS*HEAD_DIM]
//   kc, vc: [slots, N_KV*HEAD_DIM] u32 words (f16 pairs if KV_F16, else f32 bits)
//   part (SPLIT only): per (t, head, chunk) a record of HEAD_DIM/2 + 1 vec2:
//   the unnormalized sums Σ e^(s-m)·v, then (m, l = Σ e^(s-m)); attention_merge
//   combines the chunks. A chunk wholly before the window (or past p) runs no
//   iteration and leaves the neutral record (acc 0, m -3e38, l 0). Without
//   SPLIT there is one chunk (CHUNK ≥ context) and the result goes straight
//   to out: the lavapipe setting, where more invocations buy nothing; real
//   GPUs want the split for parallelism.
// HEAD_DIM must be even; the HALF placeholder (HEAD_DIM/2) sizes the private
// arrays. The loops run to dims.x, a uniform equal to HEAD_DIM/2: with a
// constant bound LLVM (lavapipe) fully unrolls them and a headDim-64 pipeline
// takes ~6 s to compile instead of ~0.5 s.
struct Params { nTokens: u32, pos: u32, base: u32, pad1: u32 }

override N_HEADS: u32;
override N_KV: u32;
override HEAD_DIM: u32;
override KV_F16: bool;
override SCALE: f32;
override SPLIT: bool;
override CHUNK: u32;
override WG: u32 = 32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec2f>;
@group(0) @binding(4) var<storage, read_write> out: array<vec2f>;
@group(0) @binding(5) var<uniform> dims: vec4u;
@group(0) @binding(6) var<storage, read_write> part: array<vec2f>;

{{KV}}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = dims.x;
  let nChunks = (params.pos + params.nTokens + CHUNK - 1u) / CHUNK;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= params.nTokens * nChunks * N_HEADS) { return; }
  let h = idx % N_HEADS;
  let c = (idx / N_HEADS) % nChunks;
  let t = idx / (N_HEADS * nChunks);
  let kvh = h / (N_HEADS / N_KV);
  let p = tok_pos(t);
  let s0 = tok_base(t);
  let kvHalf = N_KV * half;

  var qv: array<vec2f, {{HALF}}>;
  var acc: array<vec2f, {{HALF}}>;
  let qBase = t * N_HEADS * half + h * half;
  for (var i = 0u; i < half; i++) {
    qv[i] = q[qBase + i] * SCALE;
    acc[i] = vec2f(0.0);
  }
  var m = -3.0e38;
  var l = 0.0;
  let end = min(p + 1u, (c + 1u) * CHUNK);
  for (var j = max(c * CHUNK, window_start(p)); j < end; j++) {
    let base = (s0 + j) * kvHalf + kvh * half;
    var s = 0.0;
    for (var i = 0u; i < half; i++) { s += dot(qv[i], loadK(base + i)); }
    s = cap_score(s);
    // Online softmax: rescale the running sums when the max grows.
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let e = exp(s - mNew);
    l = l * corr + e;
    for (var i = 0u; i < half; i++) { acc[i] = acc[i] * corr + e * loadV(base + i); }
    m = mNew;
  }
  if (SPLIT) {
    // A chunk past p or before the window leaves (m, l) = (-3e38, 0): it weighs nothing in the merge.
    let rec = ((t * N_HEADS + h) * nChunks + c) * (half + 1u);
    for (var i = 0u; i < half; i++) { part[rec + i] = acc[i]; }
    part[rec + half] = vec2f(m, l);
  } else {
    let inv = 1.0 / l;
    for (var i = 0u; i < half; i++) { out[qBase + i] = acc[i] * inv; }
  }
}
