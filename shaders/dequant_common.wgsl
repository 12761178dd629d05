// Helpers shared by every dequant snippet. Snippets define the weight binding
// `w`, `fn deq_chunk(row, c) -> array<vec4<f32>, 8>` (elements 32c..32c+31 of
// local row `row`, zero past info.cols) and `fn dot_chunk(row, c, xs, xsum) -> f32`
// (that chunk dotted with xs; xsum = sum of the 32 x values).
// Shape and offsets come from a uniform, not override constants: one pipeline
// serves every shape of a format, and LLVM does not fully unroll short rows
// (which cost seconds of compile on lavapipe).
// rows: rows of this part; yStride: rows of the whole weight; rowBase: first
// row of this part; xOff/yOff: element offsets; dBase: u32 index of the d
// plane; cols: row length; nc: 32-element chunks per row = ceil(cols / 32).
// seg1, seg2, yOff1, yOff2: a weight made of concatenated tensors (q|k|v,
// gate|up; weights.ts uploadConcat) has rows [0, seg1), [seg1, seg2),
// [seg2, yStride), each written to its own [tokens, rows] region of y at
// yOff, yOff1, yOff2; a single tensor has seg1 = seg2 = yStride.
// acc: 1 = the product adds to y (residual), 0 = it writes y.
// ilv: G > 0 when two tensors of F rows each were interleaved in blocks of
// G rows (weights.ts uploadConcat, gate|up for store_glu.wgsl): row g of
// the weight is row (g / 2G)·G + g % 2G of the first tensor if g % 2G < G,
// else of the second; yrow() undoes it.
struct Info { rows: u32, yStride: u32, rowBase: u32, xOff: u32, yOff: u32, dBase: u32, cols: u32, nc: u32, seg1: u32, seg2: u32, yOff1: u32, yOff2: u32, acc: u32, ilv: u32, pad1: u32, pad2: u32 }
@group(0) @binding(3) var<uniform> info: Info;


// Four unsigned / signed bytes of a word as floats (byte 0 first).
fn u8x4(v: u32) -> vec4<f32> {
  return vec4<f32>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xffu));
}
fn i8x4(v: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(v << 24u, v << 16u, v << 8u, v)) >> vec4<u32>(24u));
}
fn byte_of(v: u32, k: u32) -> u32 { return (v >> (8u * k)) & 0xffu; }
// The scale of a snippet without deq_raw (matmul_generic.wgsl's SCALE): its deq_chunk is already scaled.
fn deq_one(row: u32, c: u32) -> f32 { return 1.0; }
// deq_chunk of a snippet with deq_raw: every value times the chunk's scale.
fn scaled_chunk(raw: array<vec4<f32>, 8>, d: f32) -> array<vec4<f32>, 8> {
  var a = raw;
  for (var j = 0u; j < 8u; j++) { a[j] = a[j] * d; }
  return a;
}

fn dot8(a: array<vec4<f32>, 8>, xs: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < 8u; j++) { s = fma(a[j], (*xs)[j], s); }
  return s.x + s.y + s.z + s.w;
}

// t + Σ_j f32(q[j] & m)·xs[o + j] over the 4 words of q, one fma per word:
// quants left in place in their words (masked, not shifted) against x
// pre-scaled to match (matvec_q4_k.wgsl, matvec_q6_k.wgsl). o is a constant
// at every call, so lavapipe keeps xs in registers.
fn fma_masked(q: vec4<u32>, m: vec4<u32>, xs: ptr<function, array<vec4<f32>, 8>>, o: u32, t: vec4<f32>) -> vec4<f32> {
  var s = fma(vec4<f32>(vec4<u32>(q.x) & m), (*xs)[o], t);
  s = fma(vec4<f32>(vec4<u32>(q.y) & m), (*xs)[o + 1u], s);
  s = fma(vec4<f32>(vec4<u32>(q.z) & m), (*xs)[o + 2u], s);
  return fma(vec4<f32>(vec4<u32>(q.w) & m), (*xs)[o + 3u], s);
}

// Bit b of each byte of v, as 0/1 floats (byte 0 first).
fn bit4(v: u32, b: u32) -> vec4<f32> { return u8x4((v >> b) & 0x01010101u); }
// Bits s..s+3 of v as four 0/1 floats.
fn bits4(v: u32, s: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(v) >> (vec4<u32>(s) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u));
}
// The generic dot: dequantize the chunk, then multiply-add with x.
fn dot_deq(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>) -> f32 { return dot8(deq_chunk(row, c), xs); }
