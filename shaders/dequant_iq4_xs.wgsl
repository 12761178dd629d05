// IQ4_XS, GGUF blocks (136 B = 34 words per 256): word 0 = d | scales_h << 16,
// word 1 = scales_l (4 B), words 2..33 = nibbles, 16 B per 32-element sub-block.
// Sub-block s: scale ls = lo/hi nibble of scales_l[s/2] | 2 bits of scales_h << 4,
// dl = d * (ls - 32); element j = dl * KV[lo], j + 16 = dl * KV[hi].
@group(0) @binding(0) var<storage, read> w: array<u32>;
var<private> KV: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn kv4(v: u32) -> vec4<f32> { return vec4<f32>(KV[v & 15u], KV[(v >> 8u) & 15u], KV[(v >> 16u) & 15u], KV[(v >> 24u) & 15u]); }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let s = c & 7u;
  let b = (row * (info.nc >> 3u) + (c >> 3u)) * 34u;
  let w0 = w[b];
  let d = h2(w0).x;
  let ls = ((byte_of(w[b + 1u], s >> 1u) >> (4u * (s & 1u))) & 15u) | (((w0 >> (16u + 2u * s)) & 3u) << 4u);
  let dl = d * (f32(ls) - 32.0);
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    let q = w[b + 2u + 4u * s + j];
    a[j] = kv4(q) * dl;
    a[j + 4u] = kv4(q >> 4u) * dl;
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
