// The KV cache as attention reads it: kc, vc are [contextLength, N_KV*HEAD_DIM]
// u32 words, f16 pairs (pack2x16float) when KV_F16, else f32 bit patterns;
// loadK/loadV return the pair of elements at word-pair index `pair`.
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
