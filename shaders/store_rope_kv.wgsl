// One token's q|k|v rows (decode) with rope.wgsl's step done as they are
// stored, instead of in a dispatch of its own: q rows are rotated and written
// to y, k rows rotated and v rows as they are go to the caches at slot
// base + pos (the sequence's region starts at slot base; seq_uniform.wgsl).
// Row r's partner in its rotation pair (r ^ 1) is held by lane ^ 1 (rows are
// strided by the workgroup size, an even number), so it comes by
// subgroupShuffleXor: every lane must call store_row (uniform control flow).
// ROLE0..2: what segment 0..2 of the weight holds: 1 q, 2 k, 3 v. Cache
// layout and rotation as in rope.wgsl.
struct RopeParams { nTokens: u32, pos: u32, base: u32, pad1: u32 }
@group(0) @binding(4) var<uniform> rp: RopeParams;
@group(0) @binding(8) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> kc: array<u32>;
@group(0) @binding(10) var<storage, read_write> vc: array<u32>;
override ROLE0: u32;
override ROLE1: u32;
override ROLE2: u32;
override HEAD_DIM: u32;
override ROPE_DIM: u32;
override KV_DIM: u32;
override KV_F16: bool;

fn store_row(row: u32, v: f32) { store_pair(row, v, subgroupShuffleXor(v, 1u)); }
// The same with the partner's value given (matvec_split swaps it through workgroup memory).
fn store_pair(row: u32, v: f32, other: f32) {
  if (row >= info.rows) { return; }
  // j: the row within its own tensor.
  let g = info.rowBase + row;
  var role = ROLE0;
  var j = g;
  if (g >= info.seg2) { role = ROLE2; j = g - info.seg2; } else if (g >= info.seg1) { role = ROLE1; j = g - info.seg1; }
  let odd = (j & 1u) == 1u;
  let x = select(vec2<f32>(v, other), vec2<f32>(other, v), odd); // the pair, even row first
  let d = j % HEAD_DIM;
  var r = x;
  if (role != 3u && d < ROPE_DIM) {
    let cs = table[rp.pos * (ROPE_DIM / 2u) + d / 2u];
    r = vec2<f32>(x.x * cs.x - x.y * cs.y, x.x * cs.y + x.y * cs.x);
  }
  let mine = select(r.x, r.y, odd);
  if (role == 1u) {
    put(yrow(row).x, mine);
    return;
  }
  let pair = (rp.base + rp.pos) * (KV_DIM / 2u) + j / 2u;
  if (KV_F16) {
    if (!odd) {
      if (role == 2u) { kc[pair] = pack2x16float(r); } else { vc[pair] = pack2x16float(r); }
    }
  } else {
    let at = 2u * pair + select(0u, 1u, odd);
    if (role == 2u) { kc[at] = bitcast<u32>(mine); } else { vc[at] = bitcast<u32>(mine); }
  }
}
