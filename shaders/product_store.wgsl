// The output side of the matvec/matmul shaders: y, yrow() — where part-local row `row` writes token 0 and the stride between
// tokens, through the segments of Info (dequant_common.wgsl) — and put(),
// which writes (or with Info.acc adds) one value. Callers skip rows past the part.
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
fn yrow(row: u32) -> vec2<u32> {
  let g = info.rowBase + row;
  if (info.ilv != 0u) {
    let b = g / (2u * info.ilv);
    let w = g % (2u * info.ilv);
    if (w < info.ilv) { return vec2<u32>(info.yOff + b * info.ilv + w, info.seg1); }
    return vec2<u32>(info.yOff1 + b * info.ilv + w - info.ilv, info.seg1);
  }
  if (g < info.seg1) { return vec2<u32>(info.yOff + g, info.seg1); }
  if (g < info.seg2) { return vec2<u32>(info.yOff1 + (g - info.seg1), info.seg2 - info.seg1); }
  return vec2<u32>(info.yOff2 + (g - info.seg2), info.yStride - info.seg2);
}
fn put(o: u32, v: f32) {
  if (info.acc != 0u) { y[o] += v; } else { y[o] = v; }
}
