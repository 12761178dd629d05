// Causal attention for CPU rasterisers (lavapipe), one subgroup of 8 lanes per
// token and HG heads of one GQA group (they share the K/V rows, so each cache
// word is loaded once for all HG heads). Lane l owns head dims [l·HEAD_DIM/8, (l+1)·HEAD_DIM/8): its
// slice of q and of the running output are PAIRS vec2s in registers (constant
// indices), and the scores of 4 positions at a time are one vec4 subgroupAdd
// of the lanes' partial dots; the online softmax then rescales once per 4
// positions. attention.wgsl instead gives each lane a whole head and indexes
// its q/output arrays with a loop variable, which lavapipe turns into per-lane
// scratch memory (a third of decode time at 512 positions).
// Same math as attention.wgsl without SPLIT: softmax in f32 over cache slots
// window_start(p)..p with p = tok_pos(t), scores soft-capped if SOFTCAP (both in
// attention_kv.wgsl); GQA kv head = head / (N_HEADS/N_KV). Position j of the
// token's sequence is cache slot tok_base(t) + j (seq_uniform.wgsl, or
// seq_table.wgsl for batched decode; a decode chain's are in chain_common.wgsl).
//   q, out: f32 [nTokens, N_HEADS*HEAD_DIM]   kc, vc: [slots, N_KV*HEAD_DIM]
//   as u32 words (f16 pairs if KV_F16, else f32 bits). HEAD_DIM % 16 == 0.
// Dispatch: one workgroup per (token, group of HG heads), 2-D if large.
enable subgroups;
struct Params { nTokens: u32, pos: u32, base: u32, pad1: u32 }

override N_HEADS: u32;
override N_KV: u32;
override HEAD_DIM: u32;
override KV_F16: bool;
override SCALE: f32;
const PAIRS: u32 = {{PAIRS}}u; // vec2s per lane = HEAD_DIM / 16
const HG: u32 = {{HG}}u; // heads per workgroup, a divisor of N_HEADS / N_KV

@group(0) @binding(0) var<uniform> params: Params;
// f32 arrays read and written a pair at a time (a decode chain binds one f32
// activation buffer for all of its phases).
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

{{KV}}

// This lane's partial dots of the HG heads' q with the keys at cache slots jj.
fn partials(qv: ptr<function, array<array<vec2f, PAIRS>, HG>>, jj: vec4u, off: u32, kvHalf: u32) -> array<vec4f, HG> {
  // Zeroed by hand: partials() runs in the position loop, and on Dawn + lavapipe a
  // zero-initialised `var` in a loop body has kept the last iteration's values.
  var s: array<vec4f, HG>;
  for (var g = 0u; g < HG; g++) { s[g] = vec4f(0.0); }
  let b = jj * kvHalf + vec4u(off);
  for (var i = 0u; i < PAIRS; i++) {
    let k0 = loadK(b.x + i);
    let k1 = loadK(b.y + i);
    let k2 = loadK(b.z + i);
    let k3 = loadK(b.w + i);
    for (var g = 0u; g < HG; g++) {
      let qq = (*qv)[g][i];
      s[g] += vec4f(dot(qq, k0), dot(qq, k1), dot(qq, k2), dot(qq, k3));
    }
  }
  return s;
}

// Workgroup idx's (token, heads); the entry point is attention_subgroup_main.wgsl
// (or a decode chain's main). Q_OFF, OUT_OFF: where q and out start in their
// bindings (f32 elements, even), so that a decode chain can bind one activation buffer.
override Q_OFF: u32 = 0u;
override OUT_OFF: u32 = 0u;
fn attention(idx: u32, lane: u32) {
  let h0 = (idx % (N_HEADS / HG)) * HG; // first of this workgroup's heads
  let t = idx / (N_HEADS / HG);
  let kvh = h0 / (N_HEADS / N_KV);
  let p = tok_pos(t);
  let s0 = vec4u(tok_base(t)); // this sequence's first cache slot
  let half = HEAD_DIM / 2u;
  let kvHalf = N_KV * half;
  let off = kvh * half + lane * PAIRS; // this lane's slice of a cache row
  let qBase = t * N_HEADS * half + h0 * half + lane * PAIRS; // head h0 + g at + g * half (before Q_OFF / OUT_OFF)

  var qv: array<array<vec2f, PAIRS>, HG>;
  var acc: array<array<vec2f, PAIRS>, HG>;
  var m: array<f32, HG>;
  var l: array<f32, HG>;
  for (var g = 0u; g < HG; g++) {
    for (var i = 0u; i < PAIRS; i++) {
      let j = Q_OFF + 2u * (qBase + g * half + i);
      qv[g][i] = vec2f(q[j], q[j + 1u]) * SCALE;
      acc[g][i] = vec2f(0.0);
    }
    m[g] = -3.0e38;
    l[g] = 0.0;
  }
  for (var j = window_start(p); j <= p; j += 4u) {
    // Positions j..j+3; those past p read slot p and weigh nothing.
    let jj = min(vec4u(j) + vec4u(0u, 1u, 2u, 3u), vec4u(p));
    let valid = vec4u(j) + vec4u(0u, 1u, 2u, 3u) <= vec4u(p);
    let ps = partials(&qv, s0 + jj, off, kvHalf);
    let b = (s0 + jj) * kvHalf + vec4u(off);
    var ew: array<vec4f, HG>; // this step's softmax weights per head
    for (var g = 0u; g < HG; g++) {
      var s = subgroupAdd(ps[g]);
      if (SOFTCAP > 0.0) { s = vec4f(cap_score(s.x), cap_score(s.y), cap_score(s.z), cap_score(s.w)); }
      s = select(vec4f(-3.0e38), s, valid);
      // Online softmax: rescale the running sums when the max grows.
      let mNew = max(m[g], max(max(s.x, s.y), max(s.z, s.w)));
      let corr = exp(m[g] - mNew);
      let e = select(vec4f(0.0), exp(s - vec4f(mNew)), valid);
      l[g] = l[g] * corr + ((e.x + e.y) + (e.z + e.w));
      m[g] = mNew;
      for (var i = 0u; i < PAIRS; i++) { acc[g][i] = acc[g][i] * corr; }
      ew[g] = e;
    }
    for (var i = 0u; i < PAIRS; i++) {
      let v0 = loadV(b.x + i);
      let v1 = loadV(b.y + i);
      let v2 = loadV(b.z + i);
      let v3 = loadV(b.w + i);
      for (var g = 0u; g < HG; g++) { acc[g][i] += ew[g].x * v0 + ew[g].y * v1 + ew[g].z * v2 + ew[g].w * v3; }
    }
  }
  for (var g = 0u; g < HG; g++) {
    let inv = 1.0 / l[g];
    for (var i = 0u; i < PAIRS; i++) {
      let j = OUT_OFF + 2u * (qBase + g * half + i);
      let v = acc[g][i] * inv;
      out[j] = v.x;
      out[j + 1u] = v.y;
    }
  }
}
