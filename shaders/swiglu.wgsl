// Gated activation in place: gate[i] = act(gate[i]) · up[i] over nTokens·FFN
// values; gate at 0 and up at UP_OFF (floats) of one buffer (one binding: WebGPU
// forbids a buffer bound both writable and read-only in a dispatch).
// act: silu (SwiGLU), or with GELU ggml's tanh-approximation GELU (GeGLU,
// Gemma) the way ggml-cpu's ggml_vec_geglu_f32 computes it (GGML_GELU_FP16):
//   x ≤ -10 → 0;  x ≥ 10 → x·up;  else table[f16(x)]·up, where the 64 Ki-entry
//   table holds f16(gelu_f32(h)), gelu_f32(h) = 0.5h(1 + tanhf(√(2/π)·h·(1 + 0.044715h²))).
// Here the table entry is computed on the fly: x rounded to f16, the GELU in
// f32, the result rounded to f16 (f16_round). What differs:
// the GELU is evaluated as h / (1 + e^(−2z)) (= 0.5h(1 + tanh z)), which
// needs no tanh (nothing overflows: |z| ≤ 43.7 for |h| ≤ 10) and keeps its
// relative precision where tanh z → −1. ggml's 1 + tanhf(z) cancels there:
// for h below about −3 its table entries (|gelu| < 4e-3) carry an absolute
// error up to ~3e-8·|h| from tanhf's f32 rounding, which this kernel does not
// reproduce. Elsewhere the two differ only where an f32 GELU lands within an
// f32 rounding of an f16 midpoint (one f16 ulp, 2^-11 relative).
// ggml's GPU backends (Vulkan, CUDA) use the f32 formula without the f16 steps.
struct Params { nTokens: u32, pos: u32, pad0: u32, pad1: u32 }

override FFN: u32;
override WG: u32 = 64;
override UP_OFF: u32;
override GELU: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gu: array<f32>;

const GELU_COEF_A: f32 = 0.044715;
const SQRT_2_OVER_PI: f32 = 0.79788456080286535587989211986876;

// v rounded to the nearest f16 value (ties to even), as f32, for |v| < 65520.
// Integer ops, not unpack2x16float(pack2x16float(v)): lavapipe folds that pair
// away (and WGSL leaves pack2x16float's rounding to the implementation).
fn f16_round(v: f32) -> f32 {
  let a = abs(v);
  if (a < 6.103515625e-5) { return sign(v) * round(a * 16777216.0) * 5.9604644775390625e-8; } // f16 subnormals: multiples of 2^-24
  let b = bitcast<u32>(v);
  return bitcast<f32>((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u); // keep 10 mantissa bits
}

fn geglu(x: f32, up: f32) -> f32 {
  if (x <= -10.0) { return 0.0; }
  if (x >= 10.0) { return x * up; }
  let h = f16_round(x);
  let z = SQRT_2_OVER_PI * h * (1.0 + GELU_COEF_A * h * h); // ggml_gelu_f32's order
  return f16_round(h / (1.0 + exp(-2.0 * z))) * up;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.nTokens * FFN) { return; }
  let g = gu[i];
  if (GELU) {
    gu[i] = geglu(g, gu[UP_OFF + i]);
  } else {
    gu[i] = g / (1.0 + exp(-g)) * gu[UP_OFF + i];
  }
}
