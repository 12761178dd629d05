// Causal attention for CPU rasterisers (lavapipe), one subgroup of 8 lanes per
// (token, head). Lane l owns head dims [l·HEAD_DIM/8, (l+1)·HEAD_DIM/8): its
// slice of q and of the running output are PAIRS vec2s in registers (constant
// indices), and the scores of 4 positions at a time are one vec4 subgroupAdd
// of the lanes' partial dots; the online softmax then rescales once per 4
// positions. attention.wgsl instead gives each lane a whole head and indexes
// its q/output arrays with a loop variable, which lavapipe turns into per-lane
// scratch memory (a third of decode time at 512 positions).
// Same math as attention.wgsl without SPLIT: softmax in f32 over cache slots
// 0..pos+t; GQA kv head = head / (N_HEADS/N_KV).
//   q, out: f32 [nTokens, N_HEADS*HEAD_DIM]   kc, vc: [contextLength, N_KV*HEAD_DIM]
//   as u32 words (f16 pairs if KV_F16, else f32 bits). HEAD_DIM % 16 == 0.
// Dispatch: one workgroup per (token, head), 2-D if large.
enable subgroups;
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override N_HEADS: u32;
override N_KV: u32;
override HEAD_DIM: u32;
override KV_F16: bool;
override SCALE: f32;
const PAIRS: u32 = {{PAIRS}}u; // vec2s per lane = HEAD_DIM / 16

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec2f>;
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec2f>;

fn loadK(pair: u32) -> vec2f {
  if (KV_F16) { return unpack2x16float(kc[pair]); }
  return vec2f(bitcast<f32>(kc[2u * pair]), bitcast<f32>(kc[2u * pair + 1u]));
}

fn loadV(pair: u32) -> vec2f {
  if (KV_F16) { return unpack2x16float(vc[pair]); }
  return vec2f(bitcast<f32>(vc[2u * pair]), bitcast<f32>(vc[2u * pair + 1u]));
}

// This lane's partial dot of q with the key at cache slot j.
fn partial(qv: ptr<function, array<vec2f, PAIRS>>, j: u32, off: u32, kvHalf: u32) -> f32 {
  let base = j * kvHalf + off;
  var s = 0.0;
  for (var i = 0u; i < PAIRS; i++) { s += dot((*qv)[i], loadK(base + i)); }
  return s;
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let idx = wid.x + wid.y * nwg.x;
  if (idx >= params.nTokens * N_HEADS) { return; } // whole workgroups only
  let h = idx % N_HEADS;
  let t = idx / N_HEADS;
  let kvh = h / (N_HEADS / N_KV);
  let p = params.pos + t;
  let half = HEAD_DIM / 2u;
  let kvHalf = N_KV * half;
  let off = kvh * half + lane * PAIRS; // this lane's slice of a cache row
  let qBase = t * N_HEADS * half + h * half + lane * PAIRS;

  var qv: array<vec2f, PAIRS>;
  var acc: array<vec2f, PAIRS>;
  for (var i = 0u; i < PAIRS; i++) {
    qv[i] = q[qBase + i] * SCALE;
    acc[i] = vec2f(0.0);
  }
  var m = -3.0e38;
  var l = 0.0;
  for (var j = 0u; j <= p; j += 4u) {
    // Positions j..j+3; those past p read slot p and weigh nothing.
    let jj = min(vec4u(j) + vec4u(0u, 1u, 2u, 3u), vec4u(p));
    let valid = vec4u(j) + vec4u(0u, 1u, 2u, 3u) <= vec4u(p);
    var s = subgroupAdd(vec4f(partial(&qv, jj.x, off, kvHalf), partial(&qv, jj.y, off, kvHalf),
                              partial(&qv, jj.z, off, kvHalf), partial(&qv, jj.w, off, kvHalf)));
    s = select(vec4f(-3.0e38), s, valid);
    // Online softmax: rescale the running sums when the max grows.
    let mNew = max(m, max(max(s.x, s.y), max(s.z, s.w)));
    let corr = exp(m - mNew);
    let e = select(vec4f(0.0), exp(s - vec4f(mNew)), valid);
    l = l * corr + ((e.x + e.y) + (e.z + e.w));
    let b = jj * kvHalf + vec4u(off);
    for (var i = 0u; i < PAIRS; i++) {
      acc[i] = acc[i] * corr + e.x * loadV(b.x + i) + e.y * loadV(b.y + i) + e.z * loadV(b.z + i) + e.w * loadV(b.w + i);
    }
    m = mNew;
  }
  let inv = 1.0 / l;
  for (var i = 0u; i < PAIRS; i++) { out[qBase + i] = acc[i] * inv; }
}
