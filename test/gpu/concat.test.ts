// uploadConcat: tensors of one type concatenated into one weight (the model's
// q|k|v and gate|up), computed by one dispatch that writes each tensor's rows to
// its own output region. Checked against the CPU reference for the formats with
// their own layouts (tiled Q4_0/Q8_0, block-wise Q4_K/Q6_K matvec, a plain
// float) at row counts that straddle tiles and parts, for decode and prefill.
import { describe, expect, it } from 'vitest';
import { createMatmul, gluInterleave } from '../../src/gpu/matmul.ts';
import { destroyWeight, uploadConcat } from '../../src/gpu/weights.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { f32Buffer, getTestEngine, memGguf, nmse, paramsBuffer, randomTensor, readF32, rng } from './fixture.ts';

const engine = await getTestEngine();
const plain = await getTestEngine({ noSubgroups: true, noF16: true }); // the fallback path: no subgroups, 2 rows per lane
const ROWS = [45, 13, 19]; // q, k, v: not multiples of the 32-row tile
const NT = 5;

describe('concatenated weights (q|k|v in one dispatch)', () => {
  it.skipIf(!engine).each([
    { type: GgmlType.Q4_0, cols: 64 }, { type: GgmlType.Q8_0, cols: 96 }, { type: GgmlType.Q4_K, cols: 256 },
    { type: GgmlType.Q6_K, cols: 512 }, { type: GgmlType.F16, cols: 64 },
  ].map((c) => ({ ...c, name: typeInfo(c.type)!.name })))('$name ×$cols', async ({ type, cols }) => {
    const e = engine!;
    const ti = typeInfo(type)!;
    const rand = rng(type * 77 + cols);
    const datas = ROWS.map((r) => randomTensor(type, r, cols, rand));
    const file = memGguf(datas.map((data, i) => ({ name: `t${i}`, type: ti, dims: [cols, ROWS[i]], data })));
    const rb = (cols / ti.blockElems) * ti.blockBytes;
    // Parts of 30 rows: the part boundaries fall inside tensors, not at their edges.
    const w = await uploadConcat(e, file, file.tensors, 'qkv', { maxBindingBytes: rb * 30 + 16, chunkBytes: rb * 8 });
    expect(w.rows).toBe(77);
    expect(w.segments).toEqual(ROWS);
    expect(w.parts.length).toBe(3);

    const x = new Float32Array(NT * cols).map(() => rand() * 2 - 1);
    const xb = f32Buffer(e, x);
    // Regions at offsets with gaps, as the model's 256-byte-aligned layout has.
    const offs = [0, (NT * ROWS[0] + 3) * 4, (NT * (ROWS[0] + ROWS[1]) + 10) * 4];
    const total = offs[2] / 4 + NT * ROWS[2];
    const yb = f32Buffer(e, new Float32Array(total).fill(7));
    const params = paramsBuffer(e, NT);
    const mm = await createMatmul(e, w, { x: xb, y: yb, yOffset: 0, yOffsets: offs, params, maxTokens: NT });
    const wrefs = datas.map((d, i) => dequantize(type, d, ROWS[i] * cols));
    const expected = (nt: number) => {
      const want = new Float64Array(total).fill(7);
      ROWS.forEach((rows, s) => {
        for (let t = 0; t < nt; t++)
          for (let r = 0; r < rows; r++) {
            let acc = 0;
            for (let k = 0; k < cols; k++) acc += wrefs[s][r * cols + k] * x[t * cols + k];
            want[offs[s] / 4 + t * rows + r] = acc;
          }
      });
      return want;
    };
    for (const nt of [1, NT]) {
      const enc = e.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      mm.encode(pass, nt);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const got = await readF32(e, yb, total * 4);
      const want = expected(nt);
      // The gaps between regions keep their 7s: nothing is written outside a region.
      expect(nmse(got, want), `${nt} token(s)`).toBeLessThan(1e-9);
      expect(got[offs[1] / 4 - 1]).toBe(7);
    }
    e.check();
    for (const b of [xb, yb, params]) e.destroyBuffer(b);
    destroyWeight(e, w);
  });

  // gate|up interleaved in blocks (uploadConcat's interleave): one token's
  // matvec stores silu(gate)·up in the gate region; the matmul still writes
  // both regions in their own order. With and without subgroups (R differs).
  it.skipIf(!engine || !plain).each(
    [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F16].flatMap((type) => [
      { type, sub: true, name: `${typeInfo(type)!.name}, subgroups` },
      { type, sub: false, name: `${typeInfo(type)!.name}, no subgroups` },
    ]),
  )('gate|up interleaved, SwiGLU stored: $name', async ({ type, sub }) => {
    const e = (sub ? engine : plain)!;
    const ti = typeInfo(type)!;
    const F = 48, cols = ti.blockElems === 256 ? 256 : 64;
    const G = gluInterleave(e, type, cols);
    expect(G, 'CPU kernels with an even number of rows per lane').toBeGreaterThan(0);
    const rand = rng(type * 31 + (sub ? 1 : 2));
    const datas = [randomTensor(type, F, cols, rand), randomTensor(type, F, cols, rand)];
    const file = memGguf(datas.map((data, i) => ({ name: `t${i}`, type: ti, dims: [cols, F], data })));
    const w = await uploadConcat(e, file, file.tensors, 'gate|up', { interleave: G });
    expect(w.interleave).toBe(G);
    const x = new Float32Array(NT * cols).map(() => rand() * 2 - 1);
    const xb = f32Buffer(e, x);
    const offs = [0, NT * F * 4 + 256];
    const total = offs[1] / 4 + NT * F;
    const yb = f32Buffer(e, new Float32Array(total).fill(7));
    const params = paramsBuffer(e, NT);
    const mm = await createMatmul(e, w, { x: xb, y: yb, yOffset: 0, yOffsets: offs, params, maxTokens: NT, gluStore: true });
    expect(mm.gluStored).toBe(true);
    const [wg, wu] = datas.map((d) => dequantize(type, d, F * cols));
    const dot = (wr: Float32Array, r: number, t: number) => {
      let acc = 0;
      for (let k = 0; k < cols; k++) acc += wr[r * cols + k] * x[t * cols + k];
      return acc;
    };
    const run = async (nt: number) => {
      const enc = e.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      mm.encode(pass, nt);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      return readF32(e, yb, total * 4);
    };
    // Decode: silu(gate)·up in the gate region, the up region untouched.
    const want1 = new Float64Array(total).fill(7);
    for (let r = 0; r < F; r++) {
      const g = dot(wg, r, 0);
      want1[r] = (g / (1 + Math.exp(-g))) * dot(wu, r, 0);
    }
    const got1 = await run(1);
    expect(nmse(got1.subarray(0, F), want1.subarray(0, F))).toBeLessThan(1e-9);
    expect(got1[offs[1] / 4]).toBe(7);
    // Prefill: both products, each in its own region and row order.
    const wantN = new Float64Array(total).fill(7);
    for (let t = 0; t < NT; t++)
      for (let r = 0; r < F; r++) {
        wantN[t * F + r] = dot(wg, r, t);
        wantN[offs[1] / 4 + t * F + r] = dot(wu, r, t);
      }
    expect(nmse(await run(NT), wantN)).toBeLessThan(1e-9);
    e.check();
    for (const b of [xb, yb, params]) e.destroyBuffer(b);
    destroyWeight(e, w);
  });

  it.skipIf(!engine)('refuses tensors of different types', async () => {
    const e = engine!;
    const rand = rng(5);
    const a = randomTensor(GgmlType.Q4_0, 4, 32, rand), b = randomTensor(GgmlType.Q8_0, 4, 32, rand);
    const file = memGguf([{ name: 'a', type: typeInfo(GgmlType.Q4_0)!, dims: [32, 4], data: a }, { name: 'b', type: typeInfo(GgmlType.Q8_0)!, dims: [32, 4], data: b }]);
    await expect(uploadConcat(e, file, file.tensors, 'ab')).rejects.toThrow(/different types/);
  });
});
