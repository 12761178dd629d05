// Codec properties on fresh random data: half/bf16 conversions, round-trip
// error budgets per format, awkward inputs, IQ4 hand-computed blocks, errors.
import { describe, expect, it } from 'vitest';
import { GgufError, UsageError } from '../../src/errors.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { IQ4NL_VALUES } from '../../src/quant/dequant-k.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/quant/half.ts';
import { QUANTIZABLE, quantize } from '../../src/quant/quantize.ts';
import { GgmlType, bytesFor, typeInfo } from '../../src/quant/table.ts';

/** Deterministic Gaussian-ish values (xorshift + Box-Muller). */
function randn(n: number, seed = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

function nmse(a: Float32Array, b: Float32Array): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i] - b[i]) ** 2;
    s += a[i] ** 2;
  }
  return s ? e / s : e;
}

// Budgets for Gaussian data, about 1.5x the measured NMSE (Q4_0 7.6e-3, Q4_K 5.3e-3, Q8_0 2.9e-5 …).
const BUDGET: Record<string, number> = {
  F32: 0, F16: 1e-7, BF16: 5e-6, Q8_0: 5e-5, Q6_K: 5e-4, Q5_0: 3e-3, Q5_1: 2.5e-3, Q5_K: 2.2e-3,
  Q4_0: 1.2e-2, Q4_1: 1e-2, Q4_K: 8e-3, IQ4_NL: 9e-3, IQ4_XS: 9e-3, Q3_K: 3.5e-2, Q2_K: 1.3e-1,
  MXFP4: 2e-2, // measured 1.33e-2: 8 levels per sign and a power-of-two scale
};

describe('f16 / bf16 conversions', () => {
  it('round-trips every finite f16 pattern exactly and maps NaN to a quiet NaN', () => {
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 31;
      if (e === 31 && (h & 1023)) {
        if (!Number.isNaN(f16ToF32(h)) || (f32ToF16(f16ToF32(h)) & 0x7fff) !== 0x7e00) bad++;
      } else if (f32ToF16(f16ToF32(h)) !== h) bad++;
    }
    expect(bad).toBe(0);
  });
  it('rounds f32 → f16 to nearest even, including subnormals and overflow', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even (1.0)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // rounds to inf
    expect(f32ToF16(-1e9)).toBe(0xfc00);
    expect(f32ToF16(2 ** -24)).toBe(1);
    expect(f32ToF16(2 ** -25)).toBe(0); // tie with 0 → even
    expect(f32ToF16(Math.fround(2 ** -25 * 1.0001))).toBe(1);
    expect(f32ToF16(3 * 2 ** -25)).toBe(2); // 1.5 ulps → even (2)
    expect(f32ToF16(-0)).toBe(0x8000);
  });
  it('rounds f32 → bf16 to nearest even and quiets NaN', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(bf16ToF32(f32ToBf16(Math.fround(1 + 2 ** -8)))).toBe(1); // tie → even
    expect(bf16ToF32(f32ToBf16(Math.fround(1 + 3 * 2 ** -8)))).toBe(1 + 2 ** -6);
    const nan = f32ToBf16(Number.NaN);
    expect(Number.isNaN(bf16ToF32(nan))).toBe(true);
    expect(nan & 0x40).toBe(0x40);
    expect(f32ToBf16(Number.POSITIVE_INFINITY)).toBe(0x7f80);
  });
});

describe('quantize → dequantize round trips', () => {
  for (const t of QUANTIZABLE) {
    it(`${t.name}: NMSE on fresh Gaussian rows is within ${BUDGET[t.name]}`, () => {
      const x = randn(8 * 512, 7 + t.id);
      const q = quantize(t.id, x, 512);
      expect(q.length).toBe(bytesFor(t, x.length));
      const y = dequantize(t.id, q, x.length);
      const e = nmse(x, y);
      expect(e).toBeLessThanOrEqual(BUDGET[t.name]);
      if (t.blockElems > 1) expect(e).toBeGreaterThan(0);
    });

    it(`${t.name}: zeros, a huge outlier and negative-only rows stay finite and sane`, () => {
      const n = 512;
      const zeros = new Float32Array(n);
      expect([...dequantize(t.id, quantize(t.id, zeros), n)].every((v) => v === 0)).toBe(true);

      const spike = randn(n, 3).map((v) => v * 0.01);
      spike[37] = 1000;
      const ys = dequantize(t.id, quantize(t.id, spike), n);
      expect(ys.every(Number.isFinite)).toBe(true);
      // The block scale follows the outlier. MXFP4's is a power of two whose top
      // level is 1.5× the power of two below amax: 1000 → 768 (6 · 2^7).
      if (t.id === GgmlType.MXFP4) expect(ys[37]).toBe(768);
      else expect(Math.abs(ys[37] - 1000)).toBeLessThan(1);

      const neg = randn(n, 5).map((v) => -Math.abs(v) - 0.5);
      const yn = dequantize(t.id, quantize(t.id, neg), n);
      expect(yn.every(Number.isFinite)).toBe(true);
      expect(nmse(neg, yn)).toBeLessThanOrEqual(Math.max(BUDGET[t.name] * 2, 1e-6));
    });
  }
});

describe('IQ4 hand-computed blocks', () => {
  it('IQ4_NL decodes d * table[nibble], low nibbles first', () => {
    const b = new Uint8Array(18);
    b[0] = 0x00;
    b[1] = 0x3c; // d = 1.0
    for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
    const y = dequantize(GgmlType.IQ4_NL, b, 32);
    for (let j = 0; j < 16; j++) {
      expect(y[j]).toBe(IQ4NL_VALUES[j]);
      expect(y[j + 16]).toBe(IQ4NL_VALUES[15 - j]);
    }
  });
  it('IQ4_XS decodes d * (ls - 32) * table[nibble] with 6-bit split scales', () => {
    const b = new Uint8Array(136);
    b[1] = 0x38; // d = 0.5
    // sub-block 0: ls = 33 (low nibble 1, high bits 2); sub-block 1: ls = 31 (15, 1)
    b[4] = 0x1 | (0xf << 4);
    const sh = 2 | (1 << 2);
    b[2] = sh;
    for (let j = 0; j < 128; j++) b[8 + j] = 0x8f; // low nibble 15, high 8
    const y = dequantize(GgmlType.IQ4_XS, b, 256);
    expect(y[0]).toBe(0.5 * 1 * 113);
    expect(y[16]).toBe(0.5 * 1 * 1);
    expect(y[32]).toBe(0.5 * -1 * 113);
    // Sub-blocks 2..7 have ls = 0 → scale -32.
    expect(y[64]).toBe(0.5 * -32 * 113);
  });
  it('IQ4_NL/IQ4_XS quantizers hit table levels exactly for data on the grid', () => {
    const x = new Float32Array(256);
    for (let i = 0; i < 256; i++) x[i] = IQ4NL_VALUES[(i * 7) % 16] * 0.25;
    for (const t of [GgmlType.IQ4_NL, GgmlType.IQ4_XS]) {
      const y = dequantize(t, quantize(t, x), 256);
      expect(nmse(x, y)).toBeLessThan(1e-5);
    }
  });
});

describe('errors', () => {
  it('rejects unsupported types naming the type and id', () => {
    expect(() => dequantize(GgmlType.IQ2_XXS, new Uint8Array(66), 256)).toThrow(GgufError);
    expect(() => dequantize(GgmlType.IQ2_XXS, new Uint8Array(66), 256)).toThrow(/IQ2_XXS \(id 16\)/);
    expect(() => dequantize(99 as GgmlType, new Uint8Array(4), 1)).toThrow(/id 99/);
    expect(() => quantize(GgmlType.IQ2_XXS, new Float32Array(256))).toThrow(UsageError);
  });
  it('rejects partial blocks and short buffers', () => {
    expect(() => dequantize(GgmlType.Q4_0, new Uint8Array(18), 31)).toThrow(/multiple of its block size 32/);
    expect(() => dequantize(GgmlType.Q4_K, new Uint8Array(100), 256)).toThrow(/need 144 bytes/);
    expect(() => quantize(GgmlType.Q4_K, new Float32Array(64 * 3), 64)).toThrow(/row length 64/);
  });
  it('writes into a caller buffer', () => {
    const x = randn(64, 9);
    const out = new Float32Array(64);
    expect(dequantize(GgmlType.Q8_0, quantize(GgmlType.Q8_0, x), 64, out)).toBe(out);
    expect(typeInfo(GgmlType.Q8_0)?.blockElems).toBe(32);
  });
});
