// MoE router, llama.cpp's build_moe_ffn up to the expert weights, for all
// tokens in ONE workgroup, then (several tokens) the grouping of (token, slot)
// pairs by expert for the prefill matmul. Nothing is read back: the expert
// products read `routes` on the GPU.
//   logits [nTokens, E] (+ bias [E], gpt-oss) → per token: the K experts with
//   the largest logits (ties: the lower id; probabilities are monotone in the
//   logit, so this is llama.cpp's argsort_top_k on them), and their weights:
//     GATING 0 softmax:        p_e = softmax(logits)_e, weight = p of the chosen
//     GATING 1 sigmoid:        weight = 1 / (1 + exp(-logit))
//     GATING 2 softmax_weight: top-k on the logits, then softmax over the k (gpt-oss)
//   then NORM: w /= max(Σ w, 6.103515625e-5) (llama.cpp's clamp), then × SCALE.
// routes (u32 words; M = maxTokens·K):
//   [0, M)          ids: expert of pair p = t·K + s
//   [M, 2M)         weights (f32 bits)
//   [2M, 3M)        list: the pairs grouped by expert (expert 0's first), nTokens > 1 only
//   [3M]            nTiles, then per tile 2 words: expert | count << 16, first list index
//                   (tiles of at most G pairs of one expert, experts in order)
{{BIAS}}
struct Params { nTokens: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> routes: array<u32>;

override WG: u32 = 64u;
override E: u32;
override M: u32;
override LOFF: u32 = 0u; // logits offset (floats)
override GATING: u32 = 0u;
override NORM: bool = false;
override SCALE: f32 = 1.0;
override G: u32 = 16u;
const K: u32 = {{K}}u;

var<workgroup> cnt: array<atomic<u32>, E>;
var<workgroup> cur: array<atomic<u32>, E>;
var<workgroup> off: array<u32, E>;
var<workgroup> toff: array<u32, E>;

fn logit(t: u32, e: u32) -> f32 { return logits[LOFF + t * E + e] + lbias(e); }

fn route(t: u32) {
  var ids: array<u32, K>;
  var v: array<f32, K>;
  // K passes: the largest (logit, -id) after the previous pick.
  var pv = 0.0;
  var pi = 0u;
  for (var s = 0u; s < K; s++) {
    var bv = 0.0;
    var bi = E;
    for (var e = 0u; e < E; e++) {
      let x = logit(t, e);
      let after = s == 0u || x < pv || (x == pv && e > pi);
      if (after && (bi == E || x > bv)) { bv = x; bi = e; }
    }
    bi = min(bi, E - 1u); // NaN logits: some valid id rather than none
    ids[s] = bi;
    v[s] = bv;
    pv = bv;
    pi = bi;
  }
  var w: array<f32, K>;
  var sum = 0.0;
  if (GATING == 0u) {
    var z = 0.0;
    for (var e = 0u; e < E; e++) { z += exp(logit(t, e) - v[0]); }
    for (var s = 0u; s < K; s++) { w[s] = exp(v[s] - v[0]) / z; sum += w[s]; }
  } else if (GATING == 1u) {
    for (var s = 0u; s < K; s++) { w[s] = 1.0 / (1.0 + exp(-v[s])); sum += w[s]; }
  } else {
    var z = 0.0;
    for (var s = 0u; s < K; s++) { w[s] = exp(v[s] - v[0]); z += w[s]; }
    for (var s = 0u; s < K; s++) { w[s] = w[s] / z; sum += w[s]; }
  }
  let den = max(sum, 6.103515625e-5);
  for (var s = 0u; s < K; s++) {
    routes[t * K + s] = ids[s];
    // ggml divides by the clamped sum, then scales: two roundings, kept.
    routes[M + t * K + s] = bitcast<u32>(select(w[s], w[s] / den, NORM) * SCALE);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = params.nTokens;
  for (var t = lid; t < n; t += WG) { route(t); }
  if (n < 2u) { return; } // uniform: one token needs no grouping (decode's matvec reads ids)
  // (Workgroup memory starts zeroed: cnt and cur need no reset.)
  storageBarrier(); // every token's ids are written before any thread reads them
  let np = n * K;
  for (var p = lid; p < np; p += WG) {
    let e = routes[p];
    if (e < E) { atomicAdd(&cnt[e], 1u); }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var o = 0u;
    var tt = 0u;
    for (var e = 0u; e < E; e++) {
      let c = atomicLoad(&cnt[e]);
      off[e] = o;
      toff[e] = tt;
      o += c;
      tt += (c + G - 1u) / G;
    }
    routes[3u * M] = tt;
  }
  workgroupBarrier();
  // Scatter (the order inside an expert's run does not change any result:
  // each pair's product is computed on its own), then the tiles.
  for (var p = lid; p < np; p += WG) {
    let e = routes[p];
    if (e < E) { routes[2u * M + off[e] + atomicAdd(&cur[e], 1u)] = p; }
  }
  for (var e = lid; e < E; e += WG) {
    let c = atomicLoad(&cnt[e]);
    for (var j = 0u; j * G < c; j++) {
      let i = 3u * M + 1u + 2u * (toff[e] + j);
      routes[i] = e | (min(G, c - j * G) << 16u);
      routes[i + 1u] = off[e] + j * G;
    }
  }
}
