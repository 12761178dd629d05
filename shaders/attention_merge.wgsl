// Merges the per-chunk partial softmax sums of attention.wgsl (SPLIT) into
// out: for each (token, head, pair i), with M = max over chunks of m_c,
//   out = Σ_c acc_c[i]·e^(m_c-M) / Σ_c l_c·e^(m_c-M).
// part: per (t, head, chunk) HEAD_DIM/2 + 1 vec2 (acc pairs, then (m, l)).
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override N_HEADS: u32;
override HEAD_DIM: u32;
override CHUNK: u32;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> part: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec2f>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = HEAD_DIM / 2u;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= params.nTokens * N_HEADS * half) { return; }
  let i = idx % half;
  let th = idx / half; // t * N_HEADS + h
  let t = th / N_HEADS;
  let nChunks = (params.pos + params.nTokens + CHUNK - 1u) / CHUNK;
  let used = (params.pos + t) / CHUNK + 1u; // chunks holding positions ≤ pos+t
  let first = th * nChunks;
  var mx = -3.0e38;
  for (var c = 0u; c < used; c++) { mx = max(mx, part[(first + c) * (half + 1u) + half].x); }
  var acc = vec2f(0.0);
  var l = 0.0;
  for (var c = 0u; c < used; c++) {
    let rec = (first + c) * (half + 1u);
    let w = exp(part[rec + half].x - mx);
    l += part[rec + half].y * w;
    acc += part[rec + i] * w;
  }
  out[idx] = acc / l;
}
