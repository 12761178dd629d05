// The sum of one f32 per invocation over a workgroup of WG (a power of two;
// WG = 1 is the value itself): a shared-memory tree, every invocation gets the
// total. Called in uniform control flow (it has barriers). Included by the
// row-norm kernels (rmsnorm, group_norm, residual_add) through their WG_SUM placeholder.
var<workgroup> part: array<f32, WG>;

fn wg_sum(li: u32, s: f32) -> f32 {
  part[li] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (li < stride) { part[li] += part[li + stride]; }
    workgroupBarrier();
  }
  return part[0];
}
