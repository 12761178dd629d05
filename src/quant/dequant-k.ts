// K-quant (256-element super-block) and IQ4_XS decoders, bit-exact with
// ggml's dequantize_row_q{2..6}_K / iq4_xs. Same f32 emulation as dequant.ts:
// sub-block scale = fround(d * sc) first, then one rounded multiply and one
// rounded subtract (ggml's reference path is not FMA-contracted).
import { readF16 as h16 } from './half.ts';

const fr = Math.fround;

/** ggml's kvalues_iq4nl: the 16 non-uniform IQ4 levels. */
export const IQ4NL_VALUES: Int8Array = Int8Array.of(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

/** 6-bit scale and min j (0..7) packed in the 12 scale bytes of Q4_K/Q5_K at offset s. */
export function scaleMinK4(b: Uint8Array, s: number, j: number, out: Uint8Array): void {
  if (j < 4) {
    out[0] = b[s + j] & 63;
    out[1] = b[s + j + 4] & 63;
  } else {
    out[0] = (b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4);
    out[1] = (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4);
  }
}

// Q2_K (84 B): scales[16] (lo nibble scale, hi nibble min) | qs[64] | d | dmin.
// Element n*128 + j*32 + h*16 + l uses qs[n*32 + h*16 + l] >> 2j and scales[n*8 + 2j + h].
export function dequantQ2K(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 84, oo += 256) {
    const d = h16(src, so + 80);
    const dmin = h16(src, so + 82);
    for (let n = 0; n < 2; n++) {
      const q = so + 16 + 32 * n;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        for (let h = 0; h < 2; h++) {
          const sc = src[so + n * 8 + 2 * j + h];
          const dl = fr(d * (sc & 15));
          const ml = fr(dmin * (sc >> 4));
          const y = oo + n * 128 + j * 32 + h * 16;
          for (let l = 0; l < 16; l++) out[y + l] = fr(dl * ((src[q + h * 16 + l] >> shift) & 3)) - ml;
        }
      }
    }
  }
}

/** The 16 signed 6-bit scales of a Q3_K block (12 packed bytes at offset s) into sc. */
export function unpackQ3KScales(b: Uint8Array, s: number, sc: Int8Array): void {
  for (let j = 0; j < 16; j++) {
    const lo = j < 8 ? b[s + j] & 15 : b[s + j - 8] >> 4;
    const hi = (b[s + 8 + (j % 4)] >> (2 * (j >> 2))) & 3;
    sc[j] = (lo | (hi << 4)) - 32;
  }
}

// Q3_K (110 B): hmask[32] | qs[64] | scales[12] | d. Element n*128 + j*32 + h*16 + l:
// low 2 bits from qs[n*32 + h*16 + l] >> 2j, high bit = hmask[h*16 + l] bit (4n + j), clear → -4.
export function dequantQ3K(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  const sc = new Int8Array(16);
  for (let i = 0; i < nb; i++, so += 110, oo += 256) {
    const d = h16(src, so + 108);
    unpackQ3KScales(src, so + 96, sc);
    for (let n = 0; n < 2; n++) {
      const q = so + 32 + 32 * n;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        const m = 1 << (4 * n + j);
        for (let h = 0; h < 2; h++) {
          const dl = fr(d * sc[n * 8 + 2 * j + h]);
          const y = oo + n * 128 + j * 32 + h * 16;
          for (let l = 0; l < 16; l++) {
            const v = ((src[q + h * 16 + l] >> shift) & 3) - (src[so + h * 16 + l] & m ? 0 : 4);
            out[y + l] = dl * v;
          }
        }
      }
    }
  }
}

// Q4_K (144 B): d | dmin | scales[12] | qs[128]. Chunk c (64 elements) uses qs[32c..]
// low nibbles with scale/min 2c and high nibbles with 2c+1.
export function dequantQ4K(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  const sm = new Uint8Array(2);
  for (let i = 0; i < nb; i++, so += 144, oo += 256) {
    const d = h16(src, so);
    const dmin = h16(src, so + 2);
    for (let c = 0; c < 4; c++) {
      const q = so + 16 + 32 * c;
      scaleMinK4(src, so + 4, 2 * c, sm);
      const d1 = fr(d * sm[0]);
      const m1 = fr(dmin * sm[1]);
      scaleMinK4(src, so + 4, 2 * c + 1, sm);
      const d2 = fr(d * sm[0]);
      const m2 = fr(dmin * sm[1]);
      const y = oo + 64 * c;
      for (let l = 0; l < 32; l++) out[y + l] = fr(d1 * (src[q + l] & 15)) - m1;
      for (let l = 0; l < 32; l++) out[y + 32 + l] = fr(d2 * (src[q + l] >> 4)) - m2;
    }
  }
}

// Q5_K (176 B): d | dmin | scales[12] | qh[32] | qs[128]. As Q4_K plus a 5th bit:
// qh[l] bit 2c for the low half of chunk c, bit 2c+1 for the high half.
export function dequantQ5K(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  const sm = new Uint8Array(2);
  for (let i = 0; i < nb; i++, so += 176, oo += 256) {
    const d = h16(src, so);
    const dmin = h16(src, so + 2);
    for (let c = 0; c < 4; c++) {
      const q = so + 48 + 32 * c;
      const u1 = 1 << (2 * c);
      const u2 = u1 << 1;
      scaleMinK4(src, so + 4, 2 * c, sm);
      const d1 = fr(d * sm[0]);
      const m1 = fr(dmin * sm[1]);
      scaleMinK4(src, so + 4, 2 * c + 1, sm);
      const d2 = fr(d * sm[0]);
      const m2 = fr(dmin * sm[1]);
      const y = oo + 64 * c;
      for (let l = 0; l < 32; l++) {
        const hb = src[so + 16 + l];
        out[y + l] = fr(d1 * ((src[q + l] & 15) + (hb & u1 ? 16 : 0))) - m1;
        out[y + 32 + l] = fr(d2 * ((src[q + l] >> 4) + (hb & u2 ? 16 : 0))) - m2;
      }
    }
  }
}

// Q6_K (210 B): ql[128] | qh[64] | scales[16] (int8) | d. Half n (128 elements), l < 32:
// y[l + 32k] takes ql[64n + l + 32(k&1)] nibble (k>>1) and qh[32n + l] bits 2k..2k+1; scale
// index 8n + l/16 + 2k. Value = (d*sc)*q, rounded after each multiply.
export function dequantQ6K(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 210, oo += 256) {
    const d = h16(src, so + 208);
    for (let n = 0; n < 2; n++) {
      const ql = so + 64 * n;
      const qh = so + 128 + 32 * n;
      const sc = so + 192 + 8 * n;
      const y = oo + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const a = src[ql + l];
        const b = src[ql + l + 32];
        const q1 = ((a & 15) | ((h & 3) << 4)) - 32;
        const q2 = ((b & 15) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((a >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = fr(d * ((src[sc + is] << 24) >> 24)) * q1;
        out[y + l + 32] = fr(d * ((src[sc + is + 2] << 24) >> 24)) * q2;
        out[y + l + 64] = fr(d * ((src[sc + is + 4] << 24) >> 24)) * q3;
        out[y + l + 96] = fr(d * ((src[sc + is + 6] << 24) >> 24)) * q4;
      }
    }
  }
}

// IQ4_XS (136 B): d | scales_h (u16) | scales_l[4] | qs[128]. Sub-block ib (32 elements):
// 6-bit scale ls = nibble ib of scales_l | 2 bits of scales_h << 4; dl = d*(ls-32);
// y = dl * table[nibble], low nibbles first then high, like IQ4_NL.
export function dequantIq4Xs(src: Uint8Array, so: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, so += 136, oo += 256) {
    const d = h16(src, so);
    const sh = src[so + 2] | (src[so + 3] << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((src[so + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const q = so + 8 + 16 * ib;
      const y = oo + 32 * ib;
      for (let j = 0; j < 16; j++) {
        out[y + j] = dl * IQ4NL_VALUES[src[q + j] & 15];
        out[y + j + 16] = dl * IQ4NL_VALUES[src[q + j] >> 4];
      }
    }
  }
}
