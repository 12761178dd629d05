// y[row] (+)= W[row, :] · x for Q4_K weights (decode), one 256-element block
// at a time. The generic matvec works per 32-element chunk, so for Q4_K it
// loaded the 16-byte header 8 times per block and each 32-byte run of nibbles
// twice (the run holds sub-blocks 2p in its low and 2p+1 in its high nibbles).
// Here each row's header is loaded once per block and each run once: 9 vec4
// loads per block and row instead of 24. On lavapipe every per-lane load is a
// gather, so load count is what sets the speed.
// Rows: as matvec_generic (R per invocation, strided by WG; rows past the end
// compute on the last row and are not stored, keeping the subgroup whole).
{{ENABLES}}
{{DEQUANT}}
{{XLOAD}}
{{XS}}
{{STORE}}

override WG: u32 = 8u;
const R: u32 = {{R}}u;

// x pre-scaled for nibbles left in place: byte k of a word holds elements
// whose low nibble sits at bit 8k and high nibble at 8k + 4, so masking the
// word (no shift, no per-byte extract) leaves q·2^(8k) or q·2^(8k+4), and x
// scaled by the inverse power of two gives the same products bit for bit.
const XLO = vec4<f32>(1.0, 0.00390625, 1.52587890625e-05, 5.9604644775390625e-08); // 2^0, 2^-8, 2^-16, 2^-24
const XHI = vec4<f32>(0.0625, 2.44140625e-04, 9.5367431640625e-07, 3.7252902984619141e-09); // XLO · 2^-4
const MLO = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
const MHI = vec4<u32>(0xf0u, 0xf000u, 0xf00000u, 0xf0000000u);

// Σ x over a pre-scaled chunk, unscaled (exact: only powers of two).
fn xsum8(xs: ptr<function, array<vec4<f32>, 8>>, inv: vec4<f32>) -> f32 {
  let t = (((*xs)[0] + (*xs)[1]) + ((*xs)[2] + (*xs)[3]) + ((*xs)[4] + (*xs)[5]) + ((*xs)[6] + (*xs)[7])) * inv;
  return (t.x + t.y) + (t.z + t.w);
}
// Σ q·x over 32 nibbles: bytes of q0 (elements 0..15) and q1 (16..31), the
// nibbles picked by mask m from each word in place; xs pre-scaled to match.
fn dot_nib(q0: vec4<u32>, q1: vec4<u32>, m: vec4<u32>, xs: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let t = fma_masked(q1, m, xs, 4u, fma_masked(q0, m, xs, 0u, vec4<f32>(0.0)));
  return (t.x + t.y) + (t.z + t.w);
}

// Workgroup g's rows; lid: the lane in the workgroup, lane: in the subgroup
// (matvec_main.wgsl, or a decode chain's main, is the entry point).
fn matvec(g: u32, lid: u32, lane: u32) {
  x_begin(); // a persistent kernel runs several row groups per invocation
  let row0 = g * WG * R + lid;
  let nb = info.nc >> 3u; // blocks per row
  // Zeroed by hand: a chain calls matvec() in a loop (see matmul_generic.wgsl).
  var acc: array<f32, R>;
  for (var r = 0u; r < R; r++) { acc[r] = 0.0; }
  for (var b = 0u; b < nb; b++) {
    var base: array<u32, R>; // vec4 index of the block
    var hdr: array<vec4<u32>, R>; // d, dmin, packed scales
    for (var r = 0u; r < R; r++) {
      base[r] = (min(row0 + r * WG, info.rows - 1u) * nb + b) * 9u;
      hdr[r] = w[base[r]];
    }
    for (var p = 0u; p < 4u; p++) {
      // x for sub-blocks 2p (low nibbles) and 2p+1 (high nibbles).
      var xa: array<vec4<f32>, 8>;
      var xb: array<vec4<f32>, 8>;
      load_xs_scaled(&xa, info.xOff, b * 8u + 2u * p, lane, XLO);
      load_xs_scaled(&xb, info.xOff, b * 8u + 2u * p + 1u, lane, XHI);
      let sa = xsum8(&xa, vec4<f32>(1.0, 256.0, 65536.0, 16777216.0));
      let sb = xsum8(&xb, vec4<f32>(16.0, 4096.0, 1048576.0, 268435456.0));
      for (var r = 0u; r < R; r++) {
        let q0 = w[base[r] + 1u + 2u * p];
        let q1 = w[base[r] + 2u + 2u * p];
        let ka = kscale(hdr[r], 2u * p);
        let kb = kscale(hdr[r], 2u * p + 1u);
        // Mins folded out: d·sc·Σq·x − dmin·m·Σx per sub-block.
        acc[r] += (ka.x * dot_nib(q0, q1, MLO, &xa) - ka.y * sa) + (kb.x * dot_nib(q0, q1, MHI, &xb) - kb.y * sb);
      }
    }
  }
  let k = x_scale(xs_total(x_part())); // uniform control flow: it may reduce across the subgroup
  store_all(row0, acc, k);
}
