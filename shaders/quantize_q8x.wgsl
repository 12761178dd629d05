// x [tokens, COLS] (f32, from element X_OFF) quantized to 8 bits per
// 32-element block for matmul_q4_0_q8.wgsl, as llama.cpp quantizes
// activations for its Q4_0 products (quantize_row_q8_0_ref): d = amax/127
// rounded to f16, xq = roundf(x·(1/d)) (the unrounded d's inverse).
// Tokens go in pairs, two to a word: record (p, c) of token pair p and block
// c is 9 vec4<u32> at q8x[(p·NC + c)·9]: words 0..7 hold elements 4j..4j+3,
// each (xq + 128) of token 2p in bits 0..15 and of token 2p+1 in 16..31;
// word 8 = bitcast (d of 2p, d of 2p+1, 8·Σxq of 2p, 8·Σxq of 2p+1).
// Tokens past nTokens repeat the last one (the product reads, never stores, them).
// One item = one record, 8 lanes (a subgroup of >= 8, 8 of its lanes active):
// lane l quantizes elements 4l..4l+3 of both tokens.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> q8x: array<vec4<u32>>;
struct Params { nTokens: u32 }
@group(0) @binding(4) var<uniform> params: Params;
override X_OFF: u32;
override COLS: u32;
override NC: u32 = COLS / 32u;

// C's roundf: halves away from zero (WGSL's round() goes to even).
fn round_away(v: vec4<f32>) -> vec4<f32> {
  let a = abs(v);
  let f = floor(a);
  return sign(v) * select(f, f + 1.0, a - f >= vec4<f32>(0.5));
}

// d ≥ 0 rounded to the nearest f16 (ties to even, as ggml's conversion), as
// an f32. By hand: pack2x16float's rounding is the implementation's choice
// (lavapipe's is not to nearest). Below 2^-14 f16 steps are 2^-24.
fn f16_round(d: f32) -> f32 {
  if (d < 6.103515625e-05) { return round(d * 16777216.0) / 16777216.0; }
  let b = bitcast<u32>(d);
  return bitcast<f32>((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u);
}

// Lane l's four values of block c of token t as xq + 128; d and Σxq (the block's, on every lane) through the pointers.
fn quant4(t: u32, c: u32, l: u32, d: ptr<function, f32>, sum: ptr<function, f32>) -> vec4<u32> {
  let v = x[(X_OFF + min(t, params.nTokens - 1u) * COLS) / 4u + c * 8u + l];
  let a = abs(v);
  let amax = subgroupMax(max(max(a.x, a.y), max(a.z, a.w)));
  let dd = amax / 127.0;
  let id = select(0.0, 1.0 / dd, dd != 0.0);
  let q = round_away(v * id);
  *d = f16_round(dd);
  *sum = subgroupAdd((q.x + q.y) + (q.z + q.w));
  return vec4<u32>(vec4<i32>(q) + vec4<i32>(128));
}

fn quantize_q8x(item: u32, lane: u32) {
  let p = item / NC;
  let c = item % NC;
  let l = lane & 7u;
  var d0 = 0.0;
  var d1 = 0.0;
  var s0 = 0.0;
  var s1 = 0.0;
  let a = quant4(2u * p, c, l, &d0, &s0);
  let b = quant4(2u * p + 1u, c, l, &d1, &s1);
  let at = item * 9u;
  q8x[at + l] = a | (b << vec4<u32>(16u));
  if (l == 0u) { q8x[at + 8u] = bitcast<vec4<u32>>(vec4<f32>(d0, d1, 8.0 * s0, 8.0 * s1)); }
}
