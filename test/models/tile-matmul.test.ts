// The narrow-tile product of batched decode steps (src/models/tile-matmul.ts,
// matmul_generic.wgsl with a tile store) on the three kernel configurations (CPU tuning, GPU
// tuning, no shader-f16): for 1…5 tokens through tiles of 2 and 4, per
// format, with concatenated q|k|v-like weights split in parts (row counts off
// the 32-row tiles), it writes exactly what the prefill matmul writes for the
// same tokens (bit for bit: the same sums in the same order), matches the CPU
// reference, accumulates into y when asked, writes nothing outside the rows
// and tokens given; and with an interleaved gate|up (CPU kernels) it stores
// silu(gate)·up per token, as one token's matvec does. Q4_0 with subgroups
// takes the 8-bit-x tile (matmul_q4_0_q8.wgsl): it matches llama.cpp's
// Q4_0 × Q8_0 product instead (x quantized per block, halves rounded away
// from zero, the scale rounded to f16), and the prefill matmul up to that.
import { describe, expect, it } from 'vitest';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { createMatmul, decodeSide, gluInterleave, useSubgroups } from '../../src/gpu/matmul.ts';
import { destroyWeight, uploadConcat } from '../../src/gpu/weights.ts';
import { createTileMatmul, q8xBytes, tileTokens } from '../../src/models/tile-matmul.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { quantize } from '../../src/quant/quantize.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { f32Buffer, getTestEngine, memGguf, nmse, paramsBuffer, randomTensor, readF32, rng } from '../gpu/fixture.ts';
import { matvecQ4_0Q8 } from './reference-math.ts';

const CONFIGS: [string, EngineOptions][] = [['cpu tuning', {}], ['gpu tuning', { tuning: 'gpu' }], ['no f16', { noF16: true }]];
const TYPES = [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F16];

for (const [config, opts] of CONFIGS) {
  const engine = await getTestEngine(opts);
  describe.skipIf(!engine)(`narrow-tile matmul (${config})`, () => {
    const e = engine!;

    it.each(TYPES.map((type) => ({ type, name: typeInfo(type)!.name })))('$name: equals the prefill matmul bit for bit, and the CPU reference', async ({ type }) => {
      const ti = typeInfo(type)!;
      const cols = ti.blockElems === 256 ? 512 : 96;
      const ROWS = [45, 13, 19];
      const rand = rng(type * 13 + 5);
      const datas = ROWS.map((r) => randomTensor(type, r, cols, rand));
      const file = memGguf(datas.map((data, i) => ({ name: `t${i}`, type: ti, dims: [cols, ROWS[i]], data })));
      const rb = (cols / ti.blockElems) * ti.blockBytes;
      const w = await uploadConcat(e, file, file.tensors, 'qkv', { maxBindingBytes: rb * 30 + 16 });
      expect(w.parts.length).toBe(3);
      const NT = 5;
      const x = new Float32Array(NT * cols).map(() => rand() * 2 - 1);
      const xb = f32Buffer(e, x);
      const offs = [0, (NT * ROWS[0] + 3) * 4, (NT * (ROWS[0] + ROWS[1]) + 10) * 4];
      const total = offs[2] / 4 + NT * ROWS[2];
      const y0 = new Float32Array(total).map(() => rand());
      const params = paramsBuffer(e, NT);
      const wrefs = datas.map((d, i) => dequantize(type, d, ROWS[i] * cols));
      const x8 = type === GgmlType.Q4_0 && useSubgroups(e);
      for (const acc of [false, true]) {
        const ya = f32Buffer(e, y0), yb = f32Buffer(e, y0);
        const io = { x: xb, yOffset: 0, yOffsets: offs, params, maxTokens: NT, accumulate: acc };
        const ref = await createMatmul(e, w, { ...io, y: ya });
        for (const T of [2, 4]) {
          const tile = await createTileMatmul(e, w, { ...io, y: yb }, T);
          expect(tile.gluStored).toBe(false);
          for (const nt of [2, 3, NT]) {
            e.device.queue.writeBuffer(params, 0, new Uint32Array([nt, 0, 0, 0]));
            for (const b of [ya, yb]) e.device.queue.writeBuffer(b, 0, y0);
            const enc = e.device.createCommandEncoder();
            const pass = enc.beginComputePass();
            ref.encode(pass, nt);
            tile.encode(pass, nt);
            pass.end();
            e.device.queue.submit([enc.finish()]);
            const got = await readF32(e, yb, total * 4);
            const prefill = await readF32(e, ya, total * 4);
            if (x8) expect(nmse(got, prefill), 'the f32-x product, up to 8-bit x').toBeLessThan(1e-4);
            else expect(Array.from(got), `${nt} tokens in tiles of ${T}, accumulate ${acc}`).toEqual(Array.from(prefill));
            // The CPU reference (llama.cpp's Q4_0 × Q8_0 for the 8-bit-x tile): the rows of tokens < nt, the rest as it was.
            const want = Float64Array.from(y0);
            ROWS.forEach((rows, s) => {
              for (let t = 0; t < nt; t++) {
                const xt = x.subarray(t * cols, (t + 1) * cols);
                const q8 = x8 ? matvecQ4_0Q8(datas[s], xt, rows, cols) : undefined;
                for (let r = 0; r < rows; r++) {
                  let d = 0;
                  if (q8) d = q8[r];
                  else for (let k = 0; k < cols; k++) d += wrefs[s][r * cols + k] * xt[k];
                  want[offs[s] / 4 + t * rows + r] = (acc ? y0[offs[s] / 4 + t * rows + r] : 0) + d;
                }
              }
            });
            expect(nmse(got, want)).toBeLessThan(x8 ? 1e-12 : 1e-9);
          }
          for (const b of tile.buffers) e.destroyBuffer(b);
        }
        e.destroyBuffer(ya);
        e.destroyBuffer(yb);
      }
      e.check();
      for (const b of [xb, params]) e.destroyBuffer(b);
      destroyWeight(e, w);
    });

    it.skipIf(!useSubgroups(e))('Q4_0: the 8-bit x is llama.cpp\'s Q8_0: halves away from zero, the scale to f16 (subnormal too), a zero block', async () => {
      const ti = typeInfo(GgmlType.Q4_0)!;
      const rows = 40, cols = 128, rand = rng(77);
      const data = randomTensor(GgmlType.Q4_0, rows, cols, rand);
      const file = memGguf([{ name: 'w', type: ti, dims: [cols, rows], data }]);
      const w = await uploadConcat(e, file, file.tensors, 'w', {});
      // Token 0: block 0 has amax 127 (d = 1) and halves, block 1 is zero, the rest random;
      // token 1: every block below 2^-14·127 (f16-subnormal scales).
      const x = new Float32Array(2 * cols);
      for (let k = 0; k < cols; k++) x[k] = k < 32 ? (k === 0 ? 127 : (k % 2 ? 1 : -1) * ((k % 7) + 0.5)) : k < 64 ? 0 : rand() * 2 - 1;
      for (let k = 0; k < cols; k++) x[cols + k] = (rand() * 2 - 1) * 1e-3;
      // x 64 floats into its buffer (xOffset), after other data.
      const xb = f32Buffer(e, Float32Array.from([...new Float32Array(64).fill(9), ...x])), yb = f32Buffer(e, new Float32Array(2 * rows)), params = paramsBuffer(e, 2);
      const tile = await createTileMatmul(e, w, { x: xb, xOffset: 256, y: yb, params, maxTokens: 2 }, 2);
      expect(tile.buffers.length, 'its Info and its own x records').toBe(2);
      const enc = e.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      tile.encode(pass, 2);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const got = await readF32(e, yb, 2 * rows * 4);
      // Halves to even instead (AVX2's _mm256_round_ps): the data must tell the two apart.
      const even = (xt: Float32Array) => {
        const q = quantize(GgmlType.Q8_0, xt);
        for (let b = 0; b < cols / 32; b++) {
          let amax = 0;
          for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(xt[b * 32 + j]));
          const id = amax ? Math.fround(1 / Math.fround(amax / 127)) : 0;
          for (let j = 0; j < 32; j++) {
            const v = Math.fround(xt[b * 32 + j] * id);
            q[b * 34 + 2 + j] = (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v)) & 0xff;
          }
        }
        return q;
      };
      for (let t = 0; t < 2; t++) {
        const xt = x.subarray(t * cols, (t + 1) * cols);
        const want = matvecQ4_0Q8(data, xt, rows, cols);
        expect(nmse(got.subarray(t * rows, (t + 1) * rows), want), `token ${t}`).toBeLessThan(1e-12);
        if (t === 0) expect(nmse(matvecQ4_0Q8(data, xt, rows, cols, even(xt)), want)).toBeGreaterThan(1e-9);
      }
      e.check();
      for (const b of [xb, yb, params, ...tile.buffers]) e.destroyBuffer(b);
      destroyWeight(e, w);
    });

    it.skipIf(!useSubgroups(e))('Q4_0: which tiles take 8-bit x, the records\' size, and a shared record buffer\'s limits', async () => {
      const cols = 96, rows = 20;
      const tiles = async (type: GgmlType) => {
        const ti = typeInfo(type)!;
        const file = memGguf([{ name: 'w', type: ti, dims: [cols, rows], data: randomTensor(type, rows, cols, rng(3)) }]);
        return uploadConcat(e, file, file.tensors, 'w', {});
      };
      const w = await tiles(GgmlType.Q4_0), w8 = await tiles(GgmlType.Q8_0);
      const xb = f32Buffer(e, new Float32Array(16 * cols)), yb = f32Buffer(e, new Float32Array(16 * rows)), params = paramsBuffer(e, 3);
      const io = { x: xb, y: yb, params, maxTokens: 16 };
      const d = decodeSide(e, w, io, 0, 1);
      // Up to 8 tokens, in pairs; not Q8_0.
      expect([1, 3, 8, 9].map((t) => tileTokens(d, t))).toEqual([{ T: 2, x8: true }, { T: 4, x8: true }, { T: 8, x8: true }, { T: 9, x8: false }]);
      expect(tileTokens(decodeSide(e, w8, io, 0, 1), 4).x8).toBe(false);
      // A record: 8 words + the scales (16 B each) per token pair and 32 columns.
      expect(q8xBytes(3, 96)).toBe(2 * 3 * 9 * 16);
      // Shared records serve one tile of tokens, and must hold it.
      const shared = e.createBuffer('activations', 'shared q8x', q8xBytes(4, cols), GPUBufferUsage.STORAGE);
      const small = e.createBuffer('activations', 'small', q8xBytes(2, cols), GPUBufferUsage.STORAGE);
      await expect(createTileMatmul(e, w, io, 4, small)).rejects.toThrow(/internal error: .* smaller than 4 tokens of 96/);
      const tile = await createTileMatmul(e, w, io, 4, shared);
      expect(tile.buffers.length, 'the Info only: the records are the caller\'s').toBe(1);
      const pass = e.device.createCommandEncoder().beginComputePass();
      expect(() => tile.encode(pass, 5)).toThrow(/internal error: w's tile shares its 8-bit x records for 4 tokens, got 5/);
      pass.end();
      for (const b of [xb, yb, params, shared, small, ...tile.buffers]) e.destroyBuffer(b);
      destroyWeight(e, w);
      destroyWeight(e, w8);
    });

    it.each(TYPES.map((type) => ({ type, name: typeInfo(type)!.name })))('$name: gate|up interleaved stores silu(gate)·up per token where the CPU kernels interleave', async ({ type }) => {
      const ti = typeInfo(type)!;
      const F = 48, cols = ti.blockElems === 256 ? 256 : 64, NT = 3;
      const G = gluInterleave(e, type, cols);
      const rand = rng(type * 29 + 1);
      const datas = [randomTensor(type, F, cols, rand), randomTensor(type, F, cols, rand)];
      const file = memGguf(datas.map((data, i) => ({ name: `t${i}`, type: ti, dims: [cols, F], data })));
      const w = await uploadConcat(e, file, file.tensors, 'gate|up', G ? { interleave: G } : {});
      const x = new Float32Array(NT * cols).map(() => rand() * 2 - 1);
      const xb = f32Buffer(e, x);
      const offs = [0, NT * F * 4 + 256];
      const total = offs[1] / 4 + NT * F;
      const yb = f32Buffer(e, new Float32Array(total).fill(7));
      const params = paramsBuffer(e, NT);
      const tile = await createTileMatmul(e, w, { x: xb, y: yb, yOffset: 0, yOffsets: offs, params, maxTokens: NT, gluStore: true }, 4);
      // The store needs the interleave, which only the CPU kernels make (GPU kernels apply SwiGLU on down's load).
      expect(tile.gluStored).toBe(G > 0);
      const enc = e.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      tile.encode(pass, NT);
      pass.end();
      e.device.queue.submit([enc.finish()]);
      const got = await readF32(e, yb, total * 4);
      const [wg, wu] = datas.map((d) => dequantize(type, d, F * cols));
      const x8 = type === GgmlType.Q4_0 && useSubgroups(e);
      const q8 = datas.map((d) => Array.from({ length: NT }, (_, t) => matvecQ4_0Q8(d, x.subarray(t * cols, (t + 1) * cols), F, cols)));
      const dot = (wr: Float32Array, r: number, t: number) => {
        if (x8) return q8[wr === wg ? 0 : 1][t][r];
        let acc = 0;
        for (let k = 0; k < cols; k++) acc += wr[r * cols + k] * x[t * cols + k];
        return acc;
      };
      const want = new Float64Array(total).fill(7);
      for (let t = 0; t < NT; t++)
        for (let r = 0; r < F; r++) {
          const g = dot(wg, r, t), u = dot(wu, r, t);
          if (G) want[t * F + r] = (g / (1 + Math.exp(-g))) * u;
          else {
            want[t * F + r] = g;
            want[offs[1] / 4 + t * F + r] = u;
          }
        }
      expect(nmse(got, want)).toBeLessThan(x8 ? 1e-12 : 1e-9);
      if (G) expect(got[offs[1] / 4]).toBe(7); // the up region untouched
      e.check();
      for (const b of [xb, yb, params, ...tile.buffers]) e.destroyBuffer(b);
      destroyWeight(e, w);
    });
  });
}
