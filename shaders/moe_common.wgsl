// Shared by the expert products (moe_matvec*.wgsl, moe_matmul.wgsl): the
// routes written by moe_router.wgsl and where this dispatch's part of a 3-D
// expert weight [experts, expertRows, cols] starts. The dequant snippet sees
// the part as a 2-D matrix of nExperts·expertRows rows (Info.rows), so expert
// e's row j is part-local row (e - firstExpert)·expertRows + j.
// x of pair p = t·K + s starts at info.xOff + t·xTok + s·xSlot (xSlot = 0:
// every slot reads the token's row, as gate and up do; xSlot = cols: each
// slot its own row, as down does). y: yOff + (pair or token)·expertRows + j.
// acc: add to y instead of writing it.
struct Moe { expertRows: u32, firstExpert: u32, nExperts: u32, xTok: u32, xSlot: u32, yOff: u32, acc: u32, m: u32 }
@group(0) @binding(5) var<uniform> moe: Moe;
@group(0) @binding(6) var<storage, read> routes: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
const K: u32 = {{K}}u;

// Whether expert e lies in this dispatch's part (e is workgroup-uniform wherever this is asked).
fn in_part(e: u32) -> bool { return e >= moe.firstExpert && e - moe.firstExpert < moe.nExperts; }
fn x_base(p: u32) -> u32 { return info.xOff + (p / K) * moe.xTok + (p % K) * moe.xSlot; }
fn put_y(o: u32, v: f32) {
  if (moe.acc != 0u) { y[o] += v; } else { y[o] = v; }
}
