// Bit-exactness against ggml's own output (the shared test-vector GGUF):
// dequant(<type>) == <type>.deq bit for bit, matvec within 1e-6, and our
// reference quantizers reproduce ggml's bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGguf } from '../../src/gguf/reader.ts';
import type { GgufFile } from '../../src/gguf/types.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { quantize } from '../../src/quant/quantize.ts';
import { typeByName } from '../../src/quant/table.ts';
import { hasShared, sharedModel } from '../shared.ts';

const TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'f16', 'bf16'];
/** Every quantizer reproduces ggml's bytes (no imatrix: the _ref paths). */
const EXACT_QUANT = TYPES;

describe.skipIf(!hasShared)('ggml test vectors (stories260K, 64 rows of 256)', () => {
  let f: GgufFile;
  let src: Float32Array;
  let x: Float32Array;
  const f32 = async (name: string) => {
    const t = f.tensor(name);
    if (!t) throw new Error(`vectors file lacks ${name}`);
    const b = await f.readTensor(t);
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const raw = async (name: string) => f.readTensor(f.tensor(name)!);

  beforeAll(async () => {
    f = await openGguf(sharedModel('quant-test-vectors-stories260K-64rows.gguf'));
    src = await f32('src');
    x = await f32('x');
  });
  afterAll(async () => f?.close());

  for (const name of TYPES) {
    it(`dequantizes ${name} bit for bit and its matvec matches`, async () => {
      const t = typeByName(name)!;
      const deq = dequantize(t.id, await raw(name), src.length);
      const ref = await f32(`${name}.deq`);
      const a = new Uint32Array(deq.buffer);
      const b = new Uint32Array(ref.buffer);
      let bad = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) bad++;
      expect(bad).toBe(0);
      const mv = await f32(`${name}.matvec`);
      for (let r = 0; r < 64; r++) {
        let s = 0;
        for (let c = 0; c < 256; c++) s += deq[r * 256 + c] * x[c];
        expect(Math.abs(s - mv[r])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(mv[r])));
      }
    });
  }

  for (const name of EXACT_QUANT) {
    it(`quantizes src to ggml's ${name} bytes exactly`, async () => {
      const t = typeByName(name)!;
      const ours = quantize(t.id, src, 256);
      const ref = await raw(name);
      expect(ours.length).toBe(ref.length);
      expect(Buffer.compare(Buffer.from(ours), Buffer.from(ref))).toBe(0);
    });
  }
});
