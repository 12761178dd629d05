// Y[t, row] (+)= W[row, :] · X[t, :] for a Q4_0 weight and the few tokens of
// a batched decode step (src/models/tile-matmul.ts), with x quantized to
// 8 bits per 32-element block beforehand (quantize_q8x.wgsl) as llama.cpp's
// CPU backend does for Q4_0 (ggml_vec_dot_q4_0_q8_0): the block's integer
// sum Σ(q - 8)·xq is exact, and each row accumulates (dw·dx)·sum in f32,
// block after block.
// Why integers: lavapipe spends two instructions (multiply, add) per f32
// multiply-add and broadcasts x one float at a time. Here two tokens share
// one u32 multiply: xq + 128 of tokens 2p and 2p+1 sit in the low and high
// 16 bits of a word, and a nibble q (0..15) times that word adds both
// products at once. Sixteen of them, ≤ 16·15·255 = 61200, fit in 16 bits,
// so each half-block (lo nibbles, hi nibbles) sums without a carry between
// the tokens, and the words are shared across the subgroup half as often.
// Σ(q - 8)·xq = Σ q·(xq + 128) - 128·Σq - 8·Σxq: the row's Σq once per
// block; 8·Σxq comes with the record.
// Needs subgroups of >= 8 lanes and T even; tokens past nTokens repeat the
// last one (not stored). Same entry (matmul_main.wgsl), Info, weight, y and
// stores as matmul_generic.wgsl; x is not read, q8x is.
{{ENABLES}}
{{DEQUANT}}
// x quantized by quantize_q8x.wgsl: record (pair, block) = 9 vec4<u32> (see there).
@group(0) @binding(5) var<storage, read> q8x: array<vec4<u32>>;
struct Params { nTokens: u32 }
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 8u;
const T: u32 = {{T}}u;
const P: u32 = T / 2u;
const R: u32 = {{RM}}u;
{{STORE}}

// The packed words of a token pair, lane j's vec4 to every lane: xs[j] = elements 4j..4j+3.
fn share_q(xs: ptr<function, array<vec4<u32>, 8>>, v: vec4<u32>) {
  (*xs)[0] = subgroupBroadcast(v, 0u);
  (*xs)[1] = subgroupBroadcast(v, 1u);
  (*xs)[2] = subgroupBroadcast(v, 2u);
  (*xs)[3] = subgroupBroadcast(v, 3u);
  (*xs)[4] = subgroupBroadcast(v, 4u);
  (*xs)[5] = subgroupBroadcast(v, 5u);
  (*xs)[6] = subgroupBroadcast(v, 6u);
  (*xs)[7] = subgroupBroadcast(v, 7u);
}

// Σ over the word's 4 bytes of nibble (byte k >> s) & 15 times packed x[k] (s = 0: lo nibbles, 4: hi).
fn mac4(q: u32, s: u32, x: vec4<u32>) -> u32 {
  return ((q >> s) & 15u) * x.x + ((q >> (s + 8u)) & 15u) * x.y + ((q >> (s + 16u)) & 15u) * x.z + ((q >> (s + 24u)) & 15u) * x.w;
}

// Row group g, token tile ty; lid: the lane in the workgroup, lane: in the subgroup.
fn matmul(g: u32, ty: u32, lid: u32, lane: u32) {
  let row0 = g * WG * R + lid;
  let t0 = ty * T;
  let nt = params.nTokens;
  // Zeroed by hand: in a chain's loop lavapipe may keep a var's previous value.
  var acc: array<array<f32, T>, R>;
  for (var r = 0u; r < R; r++) { for (var t = 0u; t < T; t++) { acc[r][t] = 0.0; } }
  for (var c = 0u; c < info.nc; c++) {
    var xs: array<array<vec4<u32>, 8>, P>;
    // Per token pair: (d, d', 8·Σxq, 8·Σxq'), exact in f32.
    var sc: array<vec4<f32>, P>;
    for (var p = 0u; p < P; p++) {
      let at = ((ty * P + p) * info.nc + c) * 9u;
      share_q(&xs[p], q8x[at + (lane & 7u)]);
      sc[p] = bitcast<vec4<f32>>(q8x[at + 8u]);
    }
    for (var r = 0u; r < R; r++) {
      // Rows past the end read a valid row and are not stored: every lane stays for the broadcasts.
      let row = min(row0 + r * WG, info.rows - 1u);
      let i = bidx(row, c);
      let q = w4(i);
      let dw = dval(i);
      // 128·Σq: the nibbles of each word summed bytewise (≤ 30 a byte, ≤ 120 over the 4 words).
      let qb = (q & vec4<u32>(0x0f0f0f0fu)) + ((q >> vec4<u32>(4u)) & vec4<u32>(0x0f0f0f0fu));
      let b4 = (qb.x + qb.y) + (qb.z + qb.w);
      let q128 = f32(((b4 & 255u) + ((b4 >> 8u) & 255u) + ((b4 >> 16u) & 255u) + (b4 >> 24u)) * 128u);
      for (var p = 0u; p < P; p++) {
        let lo = (mac4(q.x, 0u, xs[p][0]) + mac4(q.y, 0u, xs[p][1])) + (mac4(q.z, 0u, xs[p][2]) + mac4(q.w, 0u, xs[p][3]));
        let hi = (mac4(q.x, 4u, xs[p][4]) + mac4(q.y, 4u, xs[p][5])) + (mac4(q.z, 4u, xs[p][6]) + mac4(q.w, 4u, xs[p][7]));
        let s0 = f32((lo & 0xffffu) + (hi & 0xffffu));
        let s1 = f32((lo >> 16u) + (hi >> 16u));
        acc[r][2u * p] += dw * sc[p].x * (s0 - q128 - sc[p].z);
        acc[r][2u * p + 1u] += dw * sc[p].y * (s1 - q128 - sc[p].w);
      }
    }
  }
  store_tile(row0, t0, nt, acc);
}
