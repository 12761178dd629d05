// The KV cache as attention reads it when its type is a block type (q8_0, or
// q4_0 if KV_Q4); src/models/kv-cache.ts puts attention_kv.wgsl's score
// options after this. kc, vc: [contextLength, N_KV*HEAD_DIM] values in blocks
// of 32 consecutive values of a token's row (block b = slot·nb + c), stored as
// the bodies of all blocks (q8_0: 8 words of int8, q4_0: 4 words holding
// value j in the low nibble of byte j and value j+16 in the high nibble,
// ggml's order), then the f16 scales from word KV_DBASE, two per word (block
// b: half b%2 of word KV_DBASE + b/2). loadK/loadV return values 2·pair and
// 2·pair+1 (same block: 32 is even) as q·d, which is exact in f32 (q has at
// most 8 bits, d 11), so attention sees exactly ggml's dequantized values.
// The scale is unpacked with unpack2x16float: no shader-f16 needed.
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
override KV_Q4: bool;
override KV_DBASE: u32;

// The body word holding values 2·pair, 2·pair+1.
fn kv_word(pair: u32) -> u32 {
  let b = pair / 16u;
  let o = (2u * pair) % 32u;
  if (KV_Q4) { return 4u * b + (o % 16u) / 4u; }
  return 8u * b + o / 4u;
}

// The word of the d plane holding that block's scale.
fn kv_dword(pair: u32) -> u32 { return KV_DBASE + pair / 32u; }

// The pair from its body word and scale word.
fn kv_pair(word: u32, dword: u32, pair: u32) -> vec2f {
  let o = (2u * pair) % 32u;
  let d = unpack2x16float(dword)[(pair / 16u) & 1u];
  let s = 8u * (o % 4u);
  if (KV_Q4) {
    let n = s + select(0u, 4u, o >= 16u);
    return (vec2f(f32((word >> n) & 15u), f32((word >> (n + 8u)) & 15u)) - 8.0) * d;
  }
  let q = bitcast<vec2i>(vec2u(word << (24u - s), word << (16u - s))) >> vec2u(24u);
  return vec2f(q) * d;
}

fn loadK(pair: u32) -> vec2f { return kv_pair(kc[kv_word(pair)], kc[kv_dword(pair)], pair); }
fn loadV(pair: u32) -> vec2f { return kv_pair(vc[kv_word(pair)], vc[kv_dword(pair)], pair); }
