// y[row] (+)= W[row, :] · x for Q4_0 weights (decode, CPU rasterisers; GPUs
// take matvec_split). As matvec_generic (R rows per lane strided by WG, x
// shared across the subgroup), but the nibbles stay in place: byte k of a
// word holds element k (low nibble, bit 8k) and element k + 16 (high nibble,
// bit 8k + 4), so masking the word gives q·2^(8k) or q·2^(8k+4) as a float
// without a shift or per-byte extract, and x, pre-scaled once per chunk by
// the inverse powers of two, gives the same products bit for bit.
// Layout: repacked and tiled (formats.ts), bidx()/dval() from dequant_tiled.wgsl.
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}

override WG: u32 = 8u;
const R: u32 = {{R}}u;

const XLO = vec4<f32>(1.0, 0.00390625, 1.52587890625e-05, 5.9604644775390625e-08); // 2^0, 2^-8, 2^-16, 2^-24
const XHI = vec4<f32>(0.0625, 2.44140625e-04, 9.5367431640625e-07, 3.7252902984619141e-09); // XLO · 2^-4
const MLO = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
const MHI = vec4<u32>(0xf0u, 0xf000u, 0xf00000u, 0xf0000000u);

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 {{LANE_ARG}}) {
  let g = wid.x + wid.y * nwg.x;
  let row0 = g * WG * R + lid;
  var acc: array<f32, R>;
  for (var c = 0u; c < info.nc; c++) {
    // x[0..16) pre-scaled for the low nibbles, x[16..32) for the high ones.
    var xs: array<vec4<f32>, 8>;
    load_xs_scaled(&xs, info.xOff, c, {{LANE}}, XLO, XHI);
    let t = ((xs[0] + xs[1]) + (xs[2] + xs[3])) * vec4<f32>(1.0, 256.0, 65536.0, 16777216.0)
          + ((xs[4] + xs[5]) + (xs[6] + xs[7])) * vec4<f32>(16.0, 4096.0, 1048576.0, 268435456.0);
    let xsum = (t.x + t.y) + (t.z + t.w);
    for (var r = 0u; r < R; r++) {
      // Rows past the end read a valid row and are not stored: every lane must
      // stay in the loop for the subgroup broadcast.
      let i = bidx(min(row0 + r * WG, info.rows - 1u), c);
      let q = w4(i);
      var s = vec4<f32>(0.0);
      s = fma(vec4<f32>(vec4<u32>(q.x) & MLO), xs[0], s);
      s = fma(vec4<f32>(vec4<u32>(q.y) & MLO), xs[1], s);
      s = fma(vec4<f32>(vec4<u32>(q.z) & MLO), xs[2], s);
      s = fma(vec4<f32>(vec4<u32>(q.w) & MLO), xs[3], s);
      s = fma(vec4<f32>(vec4<u32>(q.x) & MHI), xs[4], s);
      s = fma(vec4<f32>(vec4<u32>(q.y) & MHI), xs[5], s);
      s = fma(vec4<f32>(vec4<u32>(q.z) & MHI), xs[6], s);
      s = fma(vec4<f32>(vec4<u32>(q.w) & MHI), xs[7], s);
      // The -8 offset folded out: d · (Σ q·x − 8 Σ x).
      acc[r] += dval(i) * ((s.x + s.y) + (s.z + s.w) - 8.0 * xsum);
    }
  }
  let k = out_scale(); // uniform control flow: it may reduce across the subgroup
  for (var r = 0u; r < R; r++) {
    let row = row0 + r * WG;
    if (row < info.rows) { put(yrow(row).x, acc[r] * k); }
  }
}
