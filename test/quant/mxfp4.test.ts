// MXFP4 against ggml's own quantization and dequantization
// (fixtures/mxfp4-vectors.gguf, made by llama.cpp's gguf-py and checked
// against ggml's C there), plus hand-computed blocks and the ggml conventions
// that are easy to get wrong: doubled E2M1 levels with a halved scale,
// subnormal scales, ties between levels, the uint8 wrap of tiny blocks.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGguf } from '../../src/gguf/reader.ts';
import type { GgufFile } from '../../src/gguf/types.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { MXFP4_VALUES, e8m0Half } from '../../src/quant/mxfp4.ts';
import { quantize } from '../../src/quant/quantize.ts';
import { GgmlType, bitsPerWeight, typeByName, typeInfo } from '../../src/quant/table.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/mxfp4-vectors.gguf', import.meta.url));
const bits = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));

describe('MXFP4 in the type table', () => {
  it('is ggml type 39: 32 weights in 17 bytes, 4.25 bits per weight', () => {
    const t = typeInfo(39)!;
    expect([t.name, t.blockElems, t.blockBytes, t.supported]).toEqual(['MXFP4', 32, 17, true]);
    expect(bitsPerWeight(t)).toBe(4.25);
    expect(typeByName('mxfp4')?.id).toBe(GgmlType.MXFP4);
  });
});

describe('MXFP4 vs ggml (gguf-py = ggml C)', () => {
  let f: GgufFile;
  const f32 = async (name: string) => {
    const b = await f.readTensor(f.tensor(name)!);
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const raw = async (name: string) => f.readTensor(f.tensor(name)!);
  beforeAll(async () => {
    f = await openGguf(FIXTURE);
  });
  afterAll(async () => f?.close());

  it('the file names its tensors MXFP4', () => {
    expect(f.tensor('mxfp4')!.type.id).toBe(GgmlType.MXFP4);
    expect(f.tensor('mxfp4')!.nBytes).toBe(32 * 17);
  });
  it('dequantizes ggml-quantized rows bit for bit', async () => {
    const want = await f32('mxfp4.deq');
    expect(bits(dequantize(GgmlType.MXFP4, await raw('mxfp4'), want.length))).toEqual(bits(want));
  });
  it('dequantizes every kind of exponent bit for bit (subnormal scales, e = 255 overflowing to inf)', async () => {
    const want = await f32('blocks.deq');
    const got = dequantize(GgmlType.MXFP4, await raw('blocks'), want.length);
    expect(bits(got)).toEqual(bits(want));
    expect(want.some((v) => v === Number.POSITIVE_INFINITY)).toBe(true); // 12 · 2^127
    expect(want.some((v) => v !== 0 && Math.abs(v) < 2 ** -126)).toBe(true); // f32 subnormals
  });
  it('quantizes to ggml\'s bytes exactly', async () => {
    const src = await f32('src');
    const want = await raw('mxfp4');
    const got = quantize(GgmlType.MXFP4, src, 256);
    expect(Buffer.compare(Buffer.from(got), Buffer.from(want))).toBe(0);
  });
});

describe('MXFP4 hand-computed blocks', () => {
  it('decodes kvalues[nibble] · 2^(e - 128), low nibbles first', () => {
    expect(Array.from(MXFP4_VALUES)).toEqual([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);
    const b = new Uint8Array(17);
    b[0] = 130; // d = 4
    for (let j = 0; j < 16; j++) b[1 + j] = j | ((15 - j) << 4);
    const y = dequantize(GgmlType.MXFP4, b, 32);
    for (let j = 0; j < 16; j++) {
      expect(y[j]).toBe(4 * MXFP4_VALUES[j]);
      expect(y[16 + j]).toBe(4 * MXFP4_VALUES[15 - j]);
    }
    expect(Object.is(y[8], 0)).toBe(true); // nibble 8 (-0 in E2M1) is int8 0: +0
  });
  it('has ggml\'s half-scale for e = 0, 1 (f32 subnormals), 127, 255', () => {
    expect(e8m0Half(0)).toBe(2 ** -128);
    expect(e8m0Half(1)).toBe(2 ** -127);
    expect(e8m0Half(127)).toBe(0.5);
    expect(e8m0Half(255)).toBe(2 ** 127);
  });
  it('picks e = floor(log2 amax) - 2 + 127 and the nearest level, ties to the first in table order', () => {
    const x = new Float32Array(32);
    x[0] = 6; // amax 6 → floor(log2 6) = 2 → e = 127, d = 0.5: levels 0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6
    x[1] = 0.75; // tie between 0.5 (index 1) and 1 (index 2) → 1
    x[2] = -2.5; // tie between -2 (index 12) and -3 (13) → 12
    x[3] = 5; // tie between 4 (6) and 6 (7) → 6
    x[4] = 0.2; // nearest 0 → index 0, never 8
    x[5] = -0.2;
    const q = quantize(GgmlType.MXFP4, x);
    expect(q[0]).toBe(127);
    expect([q[1] & 15, q[2] & 15, q[3] & 15, q[4] & 15, q[5] & 15, q[6] & 15]).toEqual([7, 1, 12, 6, 0, 0]);
    // An exact power of two: log2 is exact, e = 8 - 2 + 127; just below it, one less.
    x.fill(0);
    x[0] = 256;
    expect(quantize(GgmlType.MXFP4, x)[0]).toBe(133);
    x[0] = Math.fround(256 * (1 - 2 ** -24)); // log2f rounds to 8.0: still 133, as in ggml
    expect(quantize(GgmlType.MXFP4, x)[0]).toBe(133);
    x[0] = Math.fround(256 * (1 - 2 ** -16)); // log2 = 7.99998: 132
    expect(quantize(GgmlType.MXFP4, x)[0]).toBe(132);
  });
  it('wraps e mod 256 for blocks below 2^-125, as ggml does on x86 (2^-130 → 251, 2^-149 → 232)', () => {
    const x = new Float32Array(64);
    x[0] = 2 ** -130;
    x[32] = 2 ** -149;
    const q = quantize(GgmlType.MXFP4, x);
    expect([q[0], q[17]]).toEqual([251, 232]);
  });
  it('an all-zero block has e = 0 and decodes to +0', () => {
    const q = quantize(GgmlType.MXFP4, new Float32Array(32));
    expect(Array.from(q)).toEqual(new Array(17).fill(0));
    expect(dequantize(GgmlType.MXFP4, q, 32).every((v) => Object.is(v, 0))).toBe(true);
  });
});
