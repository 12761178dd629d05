// Q2_K, GGUF blocks (84 B = 21 words per 256): words 0..3 = 16 scale bytes
// (lo nibble scale, hi nibble min), words 4..19 = 64 B of 2-bit quants, word 20
// = d | dmin << 16. Chunk cc (0..7) of a block: half h = cc / 4 uses quant bytes
// 32h..32h+31 at shift 2 * (cc % 4); its first 16 elements use scale byte
// 8h + 2(cc % 4), the next 16 the following one. value = d*sc*q - dmin*m.
@group(0) @binding(0) var<storage, read> w: array<u32>;
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let cc = c & 7u;
  let h = cc >> 2u;
  let j = cc & 3u;
  let b = (row * (info.nc >> 3u) + (c >> 3u)) * 21u;
  let dm = h2(w[b + 20u]);
  let is = 8u * h + 2u * j;
  var a: array<vec4<f32>, 8>;
  for (var g = 0u; g < 2u; g++) {
    let sc = byte_of(w[b + ((is + g) >> 2u)], (is + g) & 3u);
    let dl = dm.x * f32(sc & 15u);
    let ml = dm.y * f32(sc >> 4u);
    for (var m = 0u; m < 4u; m++) {
      let q = w[b + 4u + 8u * h + 4u * g + m];
      a[4u * g + m] = u8x4((q >> (2u * j)) & 0x03030303u) * dl - ml;
    }
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
