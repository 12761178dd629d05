// K-quant reference quantizers (no importance matrix), following ggml's
// quantize_row_q{2..6}_K_ref and their helpers make_qkx2_quants,
// make_q3_quants and make_qx_quants. Every float operation is f32, emulated by
// rounding each f64 result with Math.fround (exact for +,-,*,/,sqrt), in the
// C evaluation order (a*b*c is (a*b)*c). Scratch arrays are module-level: no
// per-block allocation.
import { F16_TABLE, f32ToF16 } from './half.ts';

const fr = Math.fround;
const EPS = fr(1e-15); // GROUP_MAX_EPS
const TENTH = fr(0.1);

/** ggml nearest_int: round half to even via the 1.5*2^23 trick (|v| < 2^22). */
const nint = (v: number): number => fr(v + 12582912) - 12582912;
// biome-ignore lint/complexity/useMathMinMax: hot inner loop; a plain ternary keeps it inlined
const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/** Writes f16(v) at y[o] and returns the stored value as f32. */
function storeF16(y: Uint8Array, o: number, v: number): number {
  const h = f32ToF16(v);
  y[o] = h & 0xff;
  y[o + 1] = h >> 8;
  return F16_TABLE[h];
}

const kL = new Uint8Array(256);
const kLaux = new Uint8Array(32);
const kW = new Float32Array(32);
const kXm = new Float64Array(32);
const kScales = new Float32Array(16);
const kMins = new Float32Array(16);
const kLs = new Int8Array(256);
let theMin = 0;

/**
 * Affine fit of x[xo..xo+n) to levels 0..nmax: returns the scale and sets
 * `theMin` (the subtracted minimum, >= 0), levels in L[lo..]. Tries nstep+1
 * candidate inverse scales (rmin + rdelta*is + nmax)/(max-min), keeping the
 * one with the least weighted error (abs error if useMad).
 */
function makeQkx2(n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number, rmin: number, rdelta: number, nstep: number, useMad: boolean): number {
  let min = x[xo];
  let max = x[xo];
  let sumW = w[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]);
    sumX = fr(sumX + fr(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    theMin = -min;
    return 0;
  }
  // ggml updates min when a candidate wins, and later candidates use the new
  // min in both max - min and x - min: recompute them per candidate.
  const xm = kXm;
  for (let i = 0; i < n; i++) xm[i] = fr(x[xo + i] - min);
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nint(fr(iscale * xm[i])), 0, nmax);
    L[lo + i] = l;
    let diff = fr(fr(fr(scale * l) + min) - x[xo + i]);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(w[i] * diff));
  }
  if (nstep < 1) {
    theMin = -min;
    return scale;
  }
  const Laux = kLaux;
  Laux.fill(255);
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    let changed = false;
    for (let i = 0; i < n; i++) {
      const l = clamp(nint(fr(iscale * xm[i])), 0, nmax);
      if (Laux[i] !== l) {
        Laux[i] = l;
        changed = true;
      }
      const wl = fr(w[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    // Same levels as the previous candidate → same fit and error, which was already
    // compared against a best that can only have dropped since: skip (exact).
    if (!changed) continue;
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(w[i] * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        if (thisMin !== min) {
          min = thisMin;
          for (let i = 0; i < n; i++) xm[i] = fr(x[xo + i] - min);
          Laux.fill(255);
        }
      }
    }
  }
  theMin = -min;
  return scale;
}

/** Q2_K (84 B/256): 16 sub-blocks of 16, 2-bit levels, 4-bit scale and min each. */
export function quantizeQ2K(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  const L = kL;
  for (let i = 0; i < nb; i++, xo += 256, yo += 84) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) kW[l] = Math.abs(x[xo + 16 * j + l]);
      const s = makeQkx2(16, 3, x, xo + 16 * j, kW, L, 16 * j, -0.5, TENTH, 15, true);
      kScales[j] = s;
      kMins[j] = theMin;
      if (s > maxScale) maxScale = s;
      if (theMin > maxMin) maxMin = theMin;
    }
    let d = 0;
    let dmin = 0;
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) y[yo + j] = nint(fr(iscale * kScales[j])) & 0xff;
      d = storeF16(y, yo + 80, fr(maxScale / 15));
    } else {
      for (let j = 0; j < 16; j++) y[yo + j] = 0;
      d = storeF16(y, yo + 80, 0);
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) y[yo + j] |= (nint(fr(iscale * kMins[j])) << 4) & 0xff;
      dmin = storeF16(y, yo + 82, fr(maxMin / 15));
    } else {
      dmin = storeF16(y, yo + 82, 0);
    }
    for (let j = 0; j < 16; j++) {
      const sc = y[yo + j];
      const dd = fr(d * (sc & 15));
      if (!dd) continue;
      const dm = fr(dmin * (sc >> 4));
      for (let l = 0; l < 16; l++) L[16 * j + l] = clamp(nint(fr(fr(x[xo + 16 * j + l] + dm) / dd)), 0, 3);
    }
    packQ2(L, y, yo + 16);
  }
}

/** Packs 256 2-bit levels: byte (j/4 + l) holds L[j+l], L[j+l+32], L[j+l+64], L[j+l+96] for j in {0,128}. */
function packQ2(L: ArrayLike<number>, y: Uint8Array, o: number): void {
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) y[o + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
  }
}

/**
 * The start both symmetric fits share (ggml's make_q3_quants / make_qx_quants):
 * the signed value of largest magnitude, levels rounded at scale -nmax/max
 * (stored as l + offset in L), and the x²-weighted sums Σw·x·l and Σw·l².
 * Returns undefined (and zeroes L) for an all-but-zero group.
 */
function symmetricStart(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number, offset: number) {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return undefined;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nint(fr(iscale * v)), -nmax, nmax - 1);
    L[lo + i] = l + offset;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  return { max, sumlx, suml2 };
}

/** Symmetric fit to levels -nmax..nmax-1 with iterative per-element refinement (weights x²); L gets l+nmax. */
function makeQ3(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const start = symmetricStart(n, nmax, x, xo, L, lo, 0);
  if (!start) return 0;
  let { sumlx, suml2 } = start;
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const w = fr(v * v);
      const li = L[lo + i];
      let slx = fr(sumlx - fr(fr(w * v) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        const nl = clamp(nint(fr(fr(v * sl2) / slx)), -nmax, nmax - 1);
        if (nl !== li) {
          slx = fr(slx + fr(fr(w * v) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** Q3_K (110 B/256): 16 sub-blocks of 16, 3-bit levels (2 low bits + hmask), 6-bit signed scales. */
export function quantizeQ3K(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  const L = kLs;
  for (let i = 0; i < nb; i++, xo += 256, yo += 110) {
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      const s = makeQ3(16, 4, x, xo + 16 * j, L, 16 * j);
      kScales[j] = s;
      if (Math.abs(s) > amax) {
        amax = Math.abs(s);
        maxScale = s;
      }
    }
    const sb = yo + 96;
    for (let k = 0; k < 12; k++) y[sb + k] = 0;
    let d: number;
    if (maxScale) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l = clamp((nint(fr(iscale * kScales[j])) << 24) >> 24, -32, 31) + 32;
        if (j < 8) y[sb + j] = l & 15;
        else y[sb + j - 8] |= (l & 15) << 4;
        y[sb + 8 + (j % 4)] |= (l >> 4) << (2 * (j >> 2));
      }
      d = storeF16(y, yo + 108, fr(1 / iscale));
    } else {
      d = storeF16(y, yo + 108, 0);
    }
    for (let j = 0; j < 16; j++) {
      const lo = j < 8 ? y[sb + j] & 15 : y[sb + j - 8] >> 4;
      const sc = (lo | (((y[sb + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
      const dd = fr(d * sc);
      if (!dd) continue;
      for (let l = 0; l < 16; l++) L[16 * j + l] = clamp(nint(fr(x[xo + 16 * j + l] / dd)), -4, 3) + 4;
    }
    // High bit of level j goes to hmask[j % 32] bit j/32.
    for (let m = 0; m < 32; m++) y[yo + m] = 0;
    for (let j = 0; j < 256; j++) {
      if (L[j] > 3) {
        y[yo + (j & 31)] |= 1 << (j >> 5);
        L[j] -= 4;
      }
    }
    packQ2(L, y, yo + 32);
  }
}

/** Shared Q4_K/Q5_K path: 8 sub-blocks of 32 fitted by makeQkx2, 6-bit scales/mins packed in 12 bytes at so. */
function kx2Scales(x: Float32Array, xo: number, y: Uint8Array, yo: number, nmax: number, rmin: number, nstep: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const b = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[b + l] * x[b + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) kW[l] = fr(avX + Math.abs(x[b + l]));
    const s = makeQkx2(32, nmax, x, b, kW, kL, 32 * j, rmin, TENTH, nstep, false);
    kScales[j] = s;
    kMins[j] = theMin;
    if (s > maxScale) maxScale = s;
    if (theMin > maxMin) maxMin = theMin;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const s = yo + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nint(fr(invScale * kScales[j])) & 0xff);
    const lm = Math.min(63, nint(fr(invMin * kMins[j])) & 0xff);
    if (j < 4) {
      y[s + j] = ls;
      y[s + j + 4] = lm;
    } else {
      y[s + j + 4] = (ls & 15) | ((lm & 15) << 4);
      y[s + j - 4] |= (ls >> 4) << 6;
      y[s + j] |= (lm >> 4) << 6;
    }
  }
  const d = storeF16(y, yo, fr(maxScale / 63));
  const dmin = storeF16(y, yo + 2, fr(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    let sc: number;
    let m: number;
    if (j < 4) {
      sc = y[s + j] & 63;
      m = y[s + j + 4] & 63;
    } else {
      sc = (y[s + j + 4] & 15) | ((y[s + j - 4] >> 6) << 4);
      m = (y[s + j + 4] >> 4) | ((y[s + j] >> 6) << 4);
    }
    const dd = fr(d * sc);
    if (!dd) continue;
    const dm = fr(dmin * m);
    for (let l = 0; l < 32; l++) kL[32 * j + l] = clamp(nint(fr(fr(x[xo + 32 * j + l] + dm) / dd)), 0, nmax);
  }
}

/** Q4_K (144 B/256): d | dmin | scales[12] | qs[128], 64-element chunks as low/high nibbles. */
export function quantizeQ4K(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  for (let i = 0; i < nb; i++, xo += 256, yo += 144) {
    kx2Scales(x, xo, y, yo, 15, -1, 20);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) y[yo + 16 + 32 * c + l] = kL[64 * c + l] | (kL[64 * c + l + 32] << 4);
    }
  }
}

/** Q5_K (176 B/256): as Q4_K plus qh[32] holding each level's 5th bit. */
export function quantizeQ5K(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  for (let i = 0; i < nb; i++, xo += 256, yo += 176) {
    kx2Scales(x, xo, y, yo, 31, -0.5, 15);
    const qh = yo + 16;
    for (let l = 0; l < 32; l++) y[qh + l] = 0;
    for (let c = 0; c < 4; c++) {
      const m1 = 1 << (2 * c);
      for (let l = 0; l < 32; l++) {
        let l1 = kL[64 * c + l];
        let l2 = kL[64 * c + l + 32];
        if (l1 > 15) {
          l1 -= 16;
          y[qh + l] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          y[qh + l] |= m1 << 1;
        }
        y[yo + 48 + 32 * c + l] = l1 | (l2 << 4);
      }
    }
  }
}

/** Symmetric fit to -nmax..nmax-1 with x² weights, trying 18 perturbed scales (make_qx_quants, rmse_type 1). */
function makeQx(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const start = symmetricStart(n, nmax, x, xo, L, lo, nmax);
  if (!start) return 0;
  const { max } = start;
  let { sumlx, suml2 } = start;
  let iscale: number;
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(TENTH * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clamp(nint(fr(iscale * v)), -nmax, nmax - 1);
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + clamp(nint(fr(iscale * x[xo + i])), -nmax, nmax - 1);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** Q6_K (210 B/256): ql[128] | qh[64] | int8 scales[16] | d; levels 0..63 (l+32). */
export function quantizeQ6K(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  const L = kLs;
  for (let i = 0; i < nb; i++, xo += 256, yo += 210) {
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQx(16, 32, x, xo + 16 * ib, L, 16 * ib);
      kScales[ib] = s;
      if (Math.abs(s) > maxAbs) {
        maxAbs = Math.abs(s);
        maxScale = s;
      }
    }
    if (maxAbs < EPS) {
      y.fill(0, yo, yo + 210);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const d = storeF16(y, yo + 208, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) y[yo + 192 + ib] = Math.min(127, nint(fr(iscale * kScales[ib]))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const dd = fr(d * ((y[yo + 192 + j] << 24) >> 24));
      if (!dd) continue;
      for (let l = 0; l < 16; l++) L[16 * j + l] = clamp(nint(fr(x[xo + 16 * j + l] / dd)), -32, 31) + 32;
    }
    for (let j = 0; j < 256; j += 128) {
      const ql = yo + j / 2;
      const qh = yo + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const a = L[j + l];
        const b = L[j + l + 32];
        const c = L[j + l + 64];
        const e = L[j + l + 96];
        y[ql + l] = (a & 15) | ((c & 15) << 4);
        y[ql + l + 32] = (b & 15) | ((e & 15) << 4);
        y[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
}
