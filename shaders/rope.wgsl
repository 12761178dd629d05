// Rotary embedding, llama.cpp "normal" convention (arch llama): each head's
// adjacent pairs (x[2i], x[2i+1]), i < ROPE_DIM/2, rotate by the angle of
// position p = tok_pos(t), looked up in a CPU-built table (f64-exact cos/sin, linear
// scaling folded in). Fused with the KV-cache store: q rotates in place; k is
// rotated and written, with v, into the caches at slot tok_base(t) + p (the
// token's sequence's region: seq_uniform.wgsl or seq_table.wgsl).
//   qkv: one buffer with q f32 [nTokens, N_HEADS*HEAD_DIM] at 0, k and v
//   f32 [nTokens, N_KV*HEAD_DIM] at K_OFF and V_OFF (in vec2s). One binding,
//   because WebGPU forbids a buffer bound both writable and read-only in a dispatch.
//   table: vec2 (cos, sin) [contextLength, ROPE_DIM/2]
//   kc, vc: [slots, N_KV*HEAD_DIM] as u32 words: f16 pairs packed with
//   pack2x16float when KV_F16, else f32 bit patterns.
struct Params { nTokens: u32, pos: u32, base: u32, pad1: u32 }

override N_HEADS: u32;
override N_KV: u32;
override HEAD_DIM: u32;
override ROPE_DIM: u32;
override KV_F16: bool;
override WG: u32 = 64;
override K_OFF: u32;
override V_OFF: u32;

@group(0) @binding(0) var<uniform> params: Params;
// f32, read and written a pair at a time (a batched decode chain binds one f32
// activation buffer for all of its phases, as a vec4 view).
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
override Q_OFF: u32 = 0u; // where q starts in qkv, in vec2s (K_OFF, V_OFF likewise)
fn ld2(i: u32) -> vec2f { return vec2f(qkv[2u * i], qkv[2u * i + 1u]); }
@group(0) @binding(2) var<storage, read> table: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> kc: array<u32>;
@group(0) @binding(4) var<storage, read_write> vc: array<u32>;

fn rotate(x: vec2f, p: u32, i: u32) -> vec2f {
  if (2u * i >= ROPE_DIM) { return x; }
  let cs = table[p * (ROPE_DIM / 2u) + i];
  return vec2f(x.x * cs.x - x.y * cs.y, x.x * cs.y + x.y * cs.x);
}

fn store(pair: u32, a: vec2f, b: vec2f) {
  if (KV_F16) {
    kc[pair] = pack2x16float(a);
    vc[pair] = pack2x16float(b);
  } else {
    kc[2u * pair] = bitcast<u32>(a.x);
    kc[2u * pair + 1u] = bitcast<u32>(a.y);
    vc[2u * pair] = bitcast<u32>(b.x);
    vc[2u * pair + 1u] = bitcast<u32>(b.y);
  }
}

// Item idx: one q pair, or one k pair with its v pair, of token idx / perToken.
fn rope_kv(idx: u32) {
  let half = HEAD_DIM / 2u;
  let perToken = (N_HEADS + N_KV) * half;
  if (idx >= params.nTokens * perToken) { return; }
  let t = idx / perToken;
  let rem = idx % perToken;
  let h = rem / half;
  let i = rem % half;
  let p = tok_pos(t);
  if (h < N_HEADS) {
    let at = Q_OFF + t * N_HEADS * half + h * half + i;
    let r = rotate(ld2(at), p, i);
    qkv[2u * at] = r.x;
    qkv[2u * at + 1u] = r.y;
  } else {
    let kh = h - N_HEADS;
    let kvHalf = N_KV * half;
    let at = t * kvHalf + kh * half + i;
    store((tok_base(t) + p) * kvHalf + kh * half + i, rotate(ld2(K_OFF + at), p, i), ld2(V_OFF + at));
  }
}
