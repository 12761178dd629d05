// Causal attention over the KV cache, one invocation per (token, head).
// Token t (absolute position p = pos+t) attends to cache slots 0..p with a
// one-pass online softmax in f32; GQA: kv head = head / (N_HEADS/N_KV).
//   q: f32 [nTokens, N_HEADS*HEAD_DIM] (roped)   out: f32 [nTokens, N_HEADS*HEAD_DIM]
//   kc, vc: [contextLength, N_KV*HEAD_DIM] u32 words (f16 pairs if KV_F16, else f32 bits)
// HEAD_DIM must be even; the HALF placeholder (HEAD_DIM/2) sizes the private arrays.
// The loops run to dims.x, a uniform equal to HEAD_DIM/2: with a constant bound
// LLVM (lavapipe) fully unrolls them and a headDim-64 pipeline takes ~6 s to
// compile instead of ~0.5 s.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override N_HEADS: u32;
override N_KV: u32;
override HEAD_DIM: u32;
override KV_F16: bool;
override SCALE: f32;
override WG: u32 = 32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec2f>;
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec2f>;
@group(0) @binding(5) var<uniform> dims: vec4u;

fn loadK(pair: u32) -> vec2f {
  if (KV_F16) { return unpack2x16float(kc[pair]); }
  return vec2f(bitcast<f32>(kc[2u * pair]), bitcast<f32>(kc[2u * pair + 1u]));
}

fn loadV(pair: u32) -> vec2f {
  if (KV_F16) { return unpack2x16float(vc[pair]); }
  return vec2f(bitcast<f32>(vc[2u * pair]), bitcast<f32>(vc[2u * pair + 1u]));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let half = dims.x;
  let idx = gid.x;
  if (idx >= params.nTokens * N_HEADS) { return; }
  let t = idx / N_HEADS;
  let h = idx % N_HEADS;
  let kvh = h / (N_HEADS / N_KV);
  let p = params.pos + t;
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
  for (var j = 0u; j <= p; j++) {
    let base = j * kvHalf + kvh * half;
    var s = 0.0;
    for (var i = 0u; i < half; i++) { s += dot(qv[i], loadK(base + i)); }
    // Online softmax: rescale the running sums when the max grows.
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let e = exp(s - mNew);
    l = l * corr + e;
    for (var i = 0u; i < half; i++) { acc[i] = acc[i] * corr + e * loadV(base + i); }
    m = mNew;
  }
  let inv = 1.0 / l;
  for (var i = 0u; i < half; i++) { out[qBase + i] = acc[i] * inv; }
}
