// Shared by the tiled repacked formats (formats.ts `tile: 32`: Q4_0, Q8_0, Q6_K).
// Module-scope WGSL is order-independent, so this may follow the format snippet
// that declares `w` (array<vec4<u32>>) and precede nothing in particular.

// Block c of local row `row` in the 32-row tiled order, rows of nb blocks
// (the last tile of a part has tw rows).
fn tiled(row: u32, c: u32, nb: u32) -> u32 {
  let t0 = row & ~31u;
  let tw = min(32u, info.rows - t0);
  return t0 * nb + c * tw + (row & 31u);
}
// For 32-element blocks (one per chunk).
fn bidx(row: u32, c: u32) -> u32 { return tiled(row, c, info.nc); }
// The f16 scale of block i from the d plane that follows the bodies (word dBase).
fn dval(i: u32) -> f32 { let wi = info.dBase + (i >> 1u); return h2(w[wi >> 2u][wi & 3u])[i & 1u]; }
