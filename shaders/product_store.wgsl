// The output side of the matvec/matmul shaders: y, the accumulate switch, and
// put(), which writes (or with ACC adds) the result for part-local row `row`
// and token `tok` at yidx() (dequant_common.wgsl); rows past the part are skipped.
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
override ACC: bool = false;
fn put(row: u32, tok: u32, v: f32) {
  if (row >= info.rows) { return; }
  let o = yidx(info.rowBase + row, tok);
  if (ACC) { y[o] += v; } else { y[o] = v; }
}
