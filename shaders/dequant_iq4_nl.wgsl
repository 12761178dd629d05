// IQ4_NL, repacked: body 16 B of nibbles (4 words), d in the d plane.
// Element j = d * KV[lo(q[j])], j + 16 = d * KV[hi(q[j])] (non-linear table).
@group(0) @binding(0) var<storage, read> w: array<u32>;
var<private> KV: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn kv4(v: u32) -> vec4<f32> { return vec4<f32>(KV[v & 15u], KV[(v >> 8u) & 15u], KV[(v >> 16u) & 15u], KV[(v >> 24u) & 15u]); }
fn dval(i: u32) -> f32 { return h2(w[info.dBase + (i >> 1u)])[i & 1u]; }
fn deq_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let i = row * info.nc + c;
  let d = dval(i);
  var a: array<vec4<f32>, 8>;
  for (var j = 0u; j < 4u; j++) {
    let q = w[i * 4u + j];
    a[j] = kv4(q) * d;
    a[j + 4u] = kv4(q >> 4u) * d;
  }
  return a;
}
fn dot_chunk(row: u32, c: u32, xs: ptr<function, array<vec4<f32>, 8>>, xsum: f32) -> f32 { return dot_deq(row, c, xs); }
