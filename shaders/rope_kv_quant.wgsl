// rope.wgsl for a block-type KV cache (q8_0, or q4_0 if KV_Q4): q rotates in
// place as there; k (rotated) and v are quantized into the caches at slot
// tok_base(t) + tok_pos(t) (as in rope.wgsl), one invocation per block of 32 values, exactly as ggml's
// quantize_row_q8_0_ref / quantize_row_q4_0_ref (layout: attention_kv_quant.wgsl):
//   q8_0: amax = max|x|, d = amax/127, id = 1/d (0 if d = 0), q = roundf(x·id)
//         (half away from zero; WGSL's round() is half to even);
//   q4_0: max = the first x with the largest |x|, d = max/-8, id = 1/d,
//         q = min(15, trunc(x·id + 8.5)).
// d is stored as f16 (pack2x16float, round to nearest even as ggml's
// FP32_TO_FP16), the quants from the f32 d. Each block is read twice (the
// max, then the quants), rotating again rather than keeping 32 values in a
// private array (scratch memory on lavapipe); the rotation gives the same
// bits both times. The loops' bounds are multiplied by a 1 the compiler
// cannot see: fully unrolled (constant bounds), the q8_0 pipeline took ~7 s
// to compile on lavapipe instead of well under one.
// Two blocks share a word of the d plane, and a dispatch may write only one
// of them (kvDim/32 odd), so the caches are atomic words: the scale's half is
// cleared and set with atomicAnd/atomicOr, which leaves the other half alone
// whoever writes it.
//   qkv: q f32 [nTokens, N_HEADS*HEAD_DIM] at 0, k and v f32 [nTokens, N_KV*HEAD_DIM]
//   at K_OFF and V_OFF (in vec2s).  table: vec2 (cos, sin) [contextLength, ROPE_DIM/2]
struct Params { nTokens: u32, pos: u32, base: u32, pad1: u32 }

override N_HEADS: u32;
override N_KV: u32;
override HEAD_DIM: u32;
override ROPE_DIM: u32;
override WG: u32 = 64;
override K_OFF: u32;
override V_OFF: u32;
override KV_Q4: bool;
override D_BASE: u32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> qkv: array<vec2f>;
@group(0) @binding(2) var<storage, read> table: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> kc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> vc: array<atomic<u32>>;

fn rotate(x: vec2f, p: u32, i: u32) -> vec2f {
  if (2u * i >= ROPE_DIM) { return x; }
  let cs = table[p * (ROPE_DIM / 2u) + i];
  return vec2f(x.x * cs.x - x.y * cs.y, x.x * cs.y + x.y * cs.x);
}

// Values 2m, 2m+1 of block c of token t (k rotated at position p).
fn block_pair(isK: bool, t: u32, p: u32, c: u32, m: u32) -> vec2f {
  let e = c * 32u + 2u * m; // in the token's row
  let at = t * (N_KV * HEAD_DIM / 2u) + e / 2u;
  if (isK) { return rotate(qkv[K_OFF + at], p, (e % HEAD_DIM) / 2u); }
  return qkv[V_OFF + at];
}

fn put(isK: bool, i: u32, w: u32) {
  if (isK) { atomicStore(&kc[i], w); } else { atomicStore(&vc[i], w); }
}

// Half `h` of word i := bits (the other half untouched).
fn put_half(isK: bool, i: u32, h: u32, bits: u32) {
  let keep = select(0xffff0000u, 0x0000ffffu, h == 1u);
  if (isK) {
    atomicAnd(&kc[i], keep);
    atomicOr(&kc[i], bits << (16u * h));
  } else {
    atomicAnd(&vc[i], keep);
    atomicOr(&vc[i], bits << (16u * h));
  }
}

// ggml's roundf: half away from zero (exact: a - trunc(a) is exact in f32).
fn roundf(v: f32) -> f32 {
  let a = abs(v);
  var r = trunc(a);
  if (a - r >= 0.5) { r += 1.0; }
  return select(-r, r, v >= 0.0);
}

// Values 2m, 2m+1 of the block quantized, as the two bytes they fill (q4_0: low nibbles).
fn pair_bits(isK: bool, t: u32, p: u32, c: u32, m: u32, id: f32) -> u32 {
  let x = block_pair(isK, t, p, c, m);
  let x0 = x.x * id;
  let x1 = x.y * id;
  if (KV_Q4) { return min(15u, u32(trunc(x0 + 8.5))) | (min(15u, u32(trunc(x1 + 8.5))) << 8u); }
  let q = bitcast<vec2u>(vec2i(i32(roundf(x0)), i32(roundf(x1)))) & vec2u(0xffu);
  return q.x | (q.y << 8u);
}

fn store_block(isK: bool, t: u32, c: u32) {
  let p = tok_pos(t);
  let bound = min(1u, params.nTokens); // 1: main() runs only where nTokens ≥ 1
  var amax = 0.0;
  var mx = 0.0;
  for (var m = 0u; m < 16u * bound; m++) {
    let x = block_pair(isK, t, p, c, m);
    // Strict '<': the first of equal magnitudes wins, as in ggml.
    if (amax < abs(x.x)) { amax = abs(x.x); mx = x.x; }
    if (amax < abs(x.y)) { amax = abs(x.y); mx = x.y; }
  }
  let d = select(amax / 127.0, mx / -8.0, KV_Q4);
  let id = select(0.0, 1.0 / d, d != 0.0);
  let b = (tok_base(t) + p) * (N_KV * HEAD_DIM / 32u) + c; // block index in the cache
  // Body word k: q8_0 values 4k..4k+3 (pairs 2k, 2k+1); q4_0 the same in the
  // low nibbles and values 4k+16..4k+19 (pairs 2k+8, 2k+9) in the high ones.
  let words = select(8u, 4u, KV_Q4);
  for (var k = 0u; k < words * bound; k++) {
    var w = pair_bits(isK, t, p, c, 2u * k, id) | (pair_bits(isK, t, p, c, 2u * k + 1u, id) << 16u);
    if (KV_Q4) { w |= (pair_bits(isK, t, p, c, 2u * k + 8u, id) | (pair_bits(isK, t, p, c, 2u * k + 9u, id) << 16u)) << 4u; }
    put(isK, words * b + k, w);
  }
  put_half(isK, D_BASE + b / 2u, b % 2u, pack2x16float(vec2f(d, 0.0)) & 0xffffu);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = HEAD_DIM / 2u;
  let qPairs = N_HEADS * half;
  let nb = N_KV * HEAD_DIM / 32u;
  let perToken = qPairs + 2u * nb;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= params.nTokens * perToken) { return; }
  let t = idx / perToken;
  let rem = idx % perToken;
  if (rem < qPairs) {
    let at = t * qPairs + rem;
    qkv[at] = rotate(qkv[at], tok_pos(t), rem % half);
  } else {
    let c = rem - qPairs;
    store_block(c < nb, t, c % nb);
  }
}
