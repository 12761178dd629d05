// The KV cache as attention reads it, and the score options both attention
// kernels share (attention.wgsl, attention_subgroup.wgsl; a decode chain
// includes this file verbatim).
// kc, vc are [contextLength, N_KV*HEAD_DIM] u32 words, f16 pairs
// (pack2x16float) when KV_F16, else f32 bit patterns; loadK/loadV return the
// pair of elements at word-pair index `pair`.
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;

fn loadK(pair: u32) -> vec2f {
  if (KV_F16) { return unpack2x16float(kc[pair]); }
  return vec2f(bitcast<f32>(kc[2u * pair]), bitcast<f32>(kc[2u * pair + 1u]));
}

fn loadV(pair: u32) -> vec2f {
  if (KV_F16) { return unpack2x16float(vc[pair]); }
  return vec2f(bitcast<f32>(vc[2u * pair]), bitcast<f32>(vc[2u * pair + 1u]));
}

// Score options (every KV type: kv-cache.ts puts the block types' loaders in
// front of this part).
// SOFTCAP > 0 (Gemma 2): each score s = dot(q·SCALE, k) becomes
// SOFTCAP·tanh(s·(1/SOFTCAP)) before the softmax, as llama.cpp's build_attn_mha
// (ggml_scale by 1/cap, ggml_tanh, ggml_scale by cap). 0 leaves scores as they are.
override SOFTCAP: f32 = 0.0;
// WINDOW > 0: sliding-window attention (llama.cpp LLAMA_SWA_TYPE_STANDARD):
// the token at position p attends slot j only if p − j < WINDOW. 0: all j ≤ p.
override WINDOW: u32 = 0u;

fn cap_score(s: f32) -> f32 {
  // 1/SOFTCAP is an override-expression: dividing by SOFTCAP = 0 would fail the pipeline.
  if (SOFTCAP > 0.0) { return SOFTCAP * tanh_safe(s * (1.0 / select(1.0, SOFTCAP, SOFTCAP > 0.0))); }
  return s;
}

// The first cache slot position p attends to.
fn window_start(p: u32) -> u32 {
  if (WINDOW > 0u && p >= WINDOW) { return p + 1u - WINDOW; }
  return 0u;
}

// Copy of tanh.wgsl (see there).
fn tanh_safe(z: f32) -> f32 {
  let a = abs(z);
  let e = exp(-2.0 * a);
  let big = sign(z) * ((1.0 - e) / (1.0 + e));
  let z2 = z * z;
  let small = z * (1.0 + z2 * (-1.0 / 3.0 + z2 * (2.0 / 15.0 + z2 * (-17.0 / 315.0 + z2 * (62.0 / 2835.0)))));
  return select(big, small, a < 0.25);
}
