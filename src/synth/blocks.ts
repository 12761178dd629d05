// Random weight BLOCKS generated directly in each ggml format (no float
// quantization): random quant bits, with the scale fields of every block set so
// that the dequantized weights have a chosen standard deviation and zero-ish
// mean. Used by make-model to write large synthetic models fast and streaming.
import { UsageError } from '../errors.ts';
import { f32ToBf16, f32ToF16 } from '../quant/half.ts';
import { GgmlType, type TypeInfo, typeInfo } from '../quant/table.ts';

/** xoshiro128** PRNG: fast, seeded, 32-bit outputs. */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    // splitmix32 expands the seed into four non-zero state words.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next() | 1;
  }
  u32(): number {
    const r = Math.imul(((Math.imul(this.b, 5) << 7) | (Math.imul(this.b, 5) >>> 25)), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return r;
  }
  /** Uniform in [0, 1). */
  float(): number { return this.u32() / 4294967296; }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo + 1)); }
  /** Fills bytes with random data, 4 bytes per step. */
  fill(u8: Uint8Array): void {
    const n4 = u8.length >>> 2;
    if (u8.byteOffset % 4 === 0) {
      const u32 = new Uint32Array(u8.buffer, u8.byteOffset, n4);
      for (let i = 0; i < n4; i++) u32[i] = this.u32();
    } else {
      for (let i = 0; i < n4 * 4; i++) u8[i] = this.u32() & 255;
    }
    for (let i = n4 * 4; i < u8.length; i++) u8[i] = this.u32() & 255;
  }
}

/** Writes one block's scale fields (the rest of the block stays random) into `v` at 0. */
type VariantMaker = (rng: Rng, std: number, v: Uint8Array, dv: DataView) => void;
interface Format { fields: [off: number, len: number][]; make: VariantMaker }

const IQ4NL = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
const rms = (xs: number[]) => Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length);
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const RMS_IQ4 = rms(IQ4NL);
const RMS_Q3 = rms(range(-4, 3));
const RMS_S6 = rms(range(-32, 31));
const RMS_MXFP4 = rms([0, 1, 2, 3, 4, 6, 8, 12]);
const jitter = (rng: Rng) => 0.8 + 0.4 * rng.float();
const h = (x: number) => f32ToF16(x);

/** Packs 8 (scale, min) 6-bit pairs into Q4_K/Q5_K's 12 scale bytes at v[o..o+12). */
function packScaleMin(sc: number[], m: number[], v: Uint8Array, o: number): void {
  for (let j = 0; j < 4; j++) {
    v[o + j] = (sc[j]! & 63) | ((sc[j + 4]! >> 4) << 6);
    v[o + j + 4] = (m[j]! & 63) | ((m[j + 4]! >> 4) << 6);
    v[o + j + 8] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4);
  }
}

// Field offsets follow ggml-common.h's block structs. For each format the
// per-element rms of (scale × quant) is estimated to pick d for the target std;
// "min" fields are set to cancel the mean of unsigned quants.
const FORMATS: Partial<Record<GgmlType, Format>> = {
  // {f16 d; u8 qs[16]}: (q - 8) · d, q uniform 0..15 (rms ≈ 4.6)
  [GgmlType.Q4_0]: { fields: [[0, 2]], make: (r, s, _v, dv) => dv.setUint16(0, h((s / 4.61) * jitter(r)), true) },
  // {d, m, qs[16]}: q · d + m, m = -7.5 d
  [GgmlType.Q4_1]: { fields: [[0, 4]], make: (r, s, _v, dv) => { const d = (s / 4.61) * jitter(r); dv.setUint16(0, h(d), true); dv.setUint16(2, h(-7.5 * d), true); } },
  // {d, qh[4], qs[16]}: (q - 16) · d, q 0..31 (rms ≈ 9.2)
  [GgmlType.Q5_0]: { fields: [[0, 2]], make: (r, s, _v, dv) => dv.setUint16(0, h((s / 9.23) * jitter(r)), true) },
  [GgmlType.Q5_1]: { fields: [[0, 4]], make: (r, s, _v, dv) => { const d = (s / 9.23) * jitter(r); dv.setUint16(0, h(d), true); dv.setUint16(2, h(-15.5 * d), true); } },
  // {d, i8 qs[32]}: q · d, q uniform -128..127 (rms ≈ 73.9)
  [GgmlType.Q8_0]: { fields: [[0, 2]], make: (r, s, _v, dv) => dv.setUint16(0, h((s / 73.9) * jitter(r)), true) },
  // {d, qs[16]}: d · kvalues[q]
  [GgmlType.IQ4_NL]: { fields: [[0, 2]], make: (r, s, _v, dv) => dv.setUint16(0, h((s / RMS_IQ4) * jitter(r)), true) },
  // {scales[16] (lo nibble scale, hi nibble min), qs[64], d, dmin}: d·sc·q − dmin·mn, q 0..3
  [GgmlType.Q2_K]: {
    fields: [[0, 16], [80, 4]],
    make: (r, s, v, dv) => {
      let ss = 0;
      for (let j = 0; j < 16; j++) { const sc = r.int(4, 10); ss += sc * sc; v[j] = sc | (Math.round(1.5 * sc) << 4); }
      const d = (s / (Math.sqrt(ss / 16) * 1.118)) * jitter(r);
      dv.setUint16(16, h(d), true); dv.setUint16(18, h(d), true);
    },
  },
  // {hmask[32], qs[64], scales[12] (6-bit, minus 32), d}: d·(sc−32)·q3, q3 −4..3
  [GgmlType.Q3_K]: {
    fields: [[108, 2]],
    make: (r, s, _v, dv) => dv.setUint16(0, h((s / (RMS_S6 * RMS_Q3)) * jitter(r)), true),
  },
  // {d, dmin, scales[12], qs[128]}: d·sc·q − dmin·m, q 0..15, dmin = 4d, m = 7.5·sc/4
  [GgmlType.Q4_K]: {
    fields: [[0, 16]],
    make: (r, s, v, dv) => {
      const sc = range(0, 7).map(() => r.int(12, 33));
      packScaleMin(sc, sc.map((x) => Math.round((7.5 * x) / 4)), v, 4);
      const d = (s / (rms(sc) * 4.61)) * jitter(r);
      dv.setUint16(0, h(d), true); dv.setUint16(2, h(4 * d), true);
    },
  },
  // {d, dmin, scales[12], qh[32], qs[128]}: q 0..31, dmin = 8d, m = 15.5·sc/8
  [GgmlType.Q5_K]: {
    fields: [[0, 16]],
    make: (r, s, v, dv) => {
      const sc = range(0, 7).map(() => r.int(12, 32));
      packScaleMin(sc, sc.map((x) => Math.round((15.5 * x) / 8)), v, 4);
      const d = (s / (rms(sc) * 9.23)) * jitter(r);
      dv.setUint16(0, h(d), true); dv.setUint16(2, h(8 * d), true);
    },
  },
  // {ql[128], qh[64], i8 scales[16], d}: d·sc·(q−32), q 0..63
  [GgmlType.Q6_K]: {
    fields: [[192, 18]],
    make: (r, s, v, dv) => {
      const sc = range(0, 15).map(() => r.int(8, 40));
      sc.forEach((x, j) => { v[j] = x; });
      dv.setUint16(16, h((s / (rms(sc) * RMS_S6)) * jitter(r)), true);
    },
  },
  // {d, u16 scales_h, scales_l[4], qs[128]}: d·(ls−32)·kvalues[q], ls random 6-bit
  [GgmlType.IQ4_XS]: { fields: [[0, 2]], make: (r, s, _v, dv) => dv.setUint16(0, h((s / (RMS_S6 * RMS_IQ4)) * jitter(r)), true) },
  // {u8 e, qs[16]}: kvalues[q] · 2^(e−128), kvalues ±{0 1 2 3 4 6 8 12} (rms ≈ 5.85). The scale is a power of two, so
  // e is log2(target) rounded up or down at random in proportion, which keeps the mean square on target. No sign: E2M1 is symmetric.
  [GgmlType.MXFP4]: {
    fields: [[0, 1]],
    make: (r, s, v) => {
      const l = 128 + Math.log2((Math.abs(s) / RMS_MXFP4) * jitter(r));
      const lo = Math.floor(l);
      v[0] = Math.max(1, Math.min(254, lo + (r.float() < (2 ** (2 * (l - lo)) - 1) / 3 ? 1 : 0)));
    },
  },
};

const VARIANTS = 256;

/**
 * A filler for `type` that writes whole blocks (or elements, for float types)
 * with dequantized std ≈ `std`. `fill(out)` overwrites all of `out`, whose
 * length must be a multiple of the block size in bytes.
 *
 * `signed`: half the blocks get negative scales (as ggml's quantizers write
 * them: d takes the sign of the largest element). Unsigned quants centred off
 * zero (q4_0's q − 8 averages −0.5, q3_k's −4..3 too, IQ4_NL's table leans
 * negative) otherwise give every weight the same small negative mean, which
 * at real widths adds one common direction to every projection's output.
 * Off by default: the legacy llama files stay byte-identical.
 */
export function blockFiller(type: GgmlType, std: number, rng: Rng, opts: { signed?: boolean } = {}): { info: TypeInfo; fill: (out: Uint8Array) => void } {
  const info = typeInfo(type);
  if (!info) throw new UsageError(`unknown ggml type ${type}`);
  const fmt = FORMATS[type];
  if (fmt) {
    const vlen = fmt.fields.reduce((a, [, l]) => a + l, 0);
    const variants = new Uint8Array(VARIANTS * vlen);
    const scratch = new Uint8Array(vlen);
    const sdv = new DataView(scratch.buffer);
    for (let k = 0; k < VARIANTS; k++) {
      scratch.fill(0);
      fmt.make(rng, opts.signed && k % 2 === 1 ? -std : std, scratch, sdv);
      variants.set(scratch, k * vlen);
    }
    const bb = info.blockBytes;
    const [f0, f1] = fmt.fields;
    return {
      info,
      fill(out) {
        rng.fill(out);
        // The first random byte of each block picks its scale variant.
        for (let b = 0; b < out.length; b += bb) {
          const v = out[b + f0![0]]! * vlen;
          out.set(variants.subarray(v, v + f0![1]), b + f0![0]);
          if (f1) out.set(variants.subarray(v + f0![1], v + vlen), b + f1[0]);
        }
      },
    };
  }
  // Float types: each element picks one of 256 evenly spaced values in ±std·√3 (uniform → that std).
  const a = std * Math.sqrt(3);
  const vals = Array.from({ length: 256 }, (_, i) => (((i + 0.5) / 256) * 2 - 1) * a);
  const tmp = new Uint8Array(4096);
  if (type === GgmlType.F32) {
    const table = Float32Array.from(vals);
    return { info, fill: (out) => fillByTable(out, new Float32Array(out.buffer, out.byteOffset, out.length / 4), table, rng, tmp) };
  }
  if (type === GgmlType.F16 || type === GgmlType.BF16) {
    const table = Uint16Array.from(vals, type === GgmlType.F16 ? f32ToF16 : f32ToBf16);
    return { info, fill: (out) => fillByTable(out, new Uint16Array(out.buffer, out.byteOffset, out.length / 2), table, rng, tmp) };
  }
  throw new UsageError(`make-model cannot generate ${info.name} weights: use one of ${generatableTypes().join(' ')}`);
}

function fillByTable(out: Uint8Array, view: Float32Array | Uint16Array, table: Float32Array | Uint16Array, rng: Rng, tmp: Uint8Array): void {
  if (out.byteOffset % 4 !== 0) throw new UsageError('internal: float tensor chunks must be 4-byte aligned');
  for (let i = 0; i < view.length; i += tmp.length) {
    const n = Math.min(tmp.length, view.length - i);
    rng.fill(tmp.subarray(0, n));
    for (let k = 0; k < n; k++) view[i + k] = table[tmp[k]!]!;
  }
}

/** F32 RMSNorm weights ≈ 1 ± 0.05. */
export function normWeights(n: number, rng: Rng): Uint8Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = 1 + (rng.float() - 0.5) * 0.1;
  return new Uint8Array(f.buffer);
}

export function generatableTypes(): string[] {
  return ['F32', 'F16', 'BF16', ...Object.keys(FORMATS).map((k) => typeInfo(Number(k))!.name)];
}

/** F32 weights uniform in center ± spread (norm weights, biases). */
export function uniformWeights(n: number, center: number, spread: number, rng: Rng): Uint8Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = center + (rng.float() * 2 - 1) * spread;
  return new Uint8Array(f.buffer);
}
