// splitBlocks (the load-time scale-plane repack) against a byte-by-byte
// restatement of formats.ts's layout: bodies and d plane in tiled or row order.
import { describe, expect, it } from 'vitest';
import { blockIndex } from '../../src/gpu/formats.ts';
import { splitBlocks, splitBlocks8 } from '../../src/gpu/weights.ts';
import { rng } from './fixture.ts';

function naive(src: Uint8Array, rows: number, nb: number, bb: number, dOff: number, tile: number, sb = 2) {
  const body = bb - sb;
  const bodies = new Uint8Array(rows * nb * body);
  const ds = new Uint8Array(rows * nb * sb);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < nb; c++) {
      const s = (r * nb + c) * bb;
      const dst = blockIndex(tile, rows, nb, r, c);
      let o = dst * body;
      for (let k = 0; k < bb; k++) {
        if (k >= dOff && k < dOff + sb) ds[sb * dst + k - dOff] = src[s + k];
        else bodies[o++] = src[s + k];
      }
    }
  return { bodies, ds };
}

describe('splitBlocks', () => {
  it.each([
    { name: 'Q8_0 tiled, 45 rows (a short last tile)', bb: 34, dOff: 0, tile: 32, rows: 45, nb: 3 },
    { name: 'Q4_0 tiled, 64 rows', bb: 18, dOff: 0, tile: 32, rows: 64, nb: 2 },
    { name: 'Q6_K tiled, 37 rows, scale at 208', bb: 210, dOff: 208, tile: 32, rows: 37, nb: 2 },
    { name: 'Q3_K row order, scale at 108', bb: 110, dOff: 108, tile: 0, rows: 3, nb: 3 },
  ])('$name', ({ bb, dOff, tile, rows, nb }) => {
    const rand = rng(bb * 1000 + rows);
    // One byte of lead-in, so the source view starts at an odd offset.
    const buf = new Uint8Array(1 + rows * nb * bb).map(() => Math.floor(rand() * 256));
    const src = buf.subarray(1);
    const got = splitBlocks(src, rows, nb, bb, dOff, tile);
    const want = naive(src, rows, nb, bb, dOff, tile);
    expect(Buffer.from(got.bodies).equals(Buffer.from(want.bodies))).toBe(true);
    expect(Buffer.from(got.ds).equals(Buffer.from(want.ds))).toBe(true);
  });
});

describe('splitBlocks8 (one-byte scale: MXFP4)', () => {
  it.each([
    { name: 'tiled, 45 rows (a short last tile)', tile: 32, rows: 45, nb: 3 },
    { name: 'row order, 3 rows', tile: 0, rows: 3, nb: 2 },
  ])('$name', ({ tile, rows, nb }) => {
    const rand = rng(17 * rows + tile);
    const buf = new Uint8Array(1 + rows * nb * 17).map(() => Math.floor(rand() * 256));
    const src = buf.subarray(1);
    const got = splitBlocks8(src, rows, nb, 17, tile);
    const want = naive(src, rows, nb, 17, 0, tile, 1);
    expect(Buffer.from(got.bodies).equals(Buffer.from(want.bodies))).toBe(true);
    expect(Buffer.from(got.ds).equals(Buffer.from(want.ds))).toBe(true);
  });
});
