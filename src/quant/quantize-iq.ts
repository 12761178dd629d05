// IQ4_NL / IQ4_XS quantizers (no importance matrix). They follow the scheme of
// ggml's quantize_row_iq4_nl_impl — x²-weighted least squares over 15 trial
// scales around max/-127, each value mapped to the nearest of the 16
// non-linear levels — but are NOT byte-identical to ggml (round trips and
// error levels are tested instead). f32 math via Math.fround as elsewhere.
import { F16_TABLE, f32ToF16 } from './half.ts';
import { IQ4NL_VALUES } from './dequant-k.ts';

const fr = Math.fround;
const EPS = fr(1e-15);
const NTRY = 7;

/** Midpoints between consecutive levels: level i is chosen for v in [MID[i-1], MID[i]). */
const MID = Float64Array.from({ length: 15 }, (_, i) => (IQ4NL_VALUES[i] + IQ4NL_VALUES[i + 1]) / 2);

function bestIndex(v: number): number {
  let i = 0;
  while (i < 15 && v >= MID[i]) i++;
  return i;
}

const L = new Uint8Array(32);
const Lt = new Uint8Array(32);

/**
 * Best scale for the 32 values at x[xo..] (levels into L); 0 for an all-zero
 * block. Weighted by x² so large values, which dominate the matmul error,
 * land closest to a level.
 */
function fitBlock(x: Float32Array, xo: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[xo + j]);
    if (a > amax) {
      amax = a;
      max = x[xo + j];
    }
  }
  if (amax < EPS) {
    L.fill(0);
    return 0;
  }
  let best = -1;
  let d = 0;
  for (let itry = -NTRY; itry <= NTRY; itry++) {
    const id = fr((itry + IQ4NL_VALUES[0]) / max);
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j];
      const l = bestIndex(fr(id * v));
      Lt[j] = l;
      const q = IQ4NL_VALUES[l];
      const w = fr(v * v);
      sumqx = fr(sumqx + fr(fr(w * q) * v));
      sumq2 = fr(sumq2 + fr(fr(w * q) * q));
    }
    if (sumq2 > 0 && (best < 0 || fr(sumqx * sumqx) > fr(best * sumq2))) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
      L.set(Lt);
    }
  }
  return d;
}

/** Levels for x[xo..xo+32) at the stored scale dl (what the decoder will multiply by). */
function requant(x: Float32Array, xo: number, dl: number): void {
  const id = dl ? fr(1 / dl) : 0;
  for (let j = 0; j < 32; j++) L[j] = bestIndex(fr(id * x[xo + j]));
}

/** IQ4_NL (18 B/32): f16 d | 16 B nibbles (low = first 16 values, high = last 16). */
export function quantizeIq4Nl(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  for (let i = 0; i < nb; i++, xo += 32, yo += 18) {
    const h = f32ToF16(fitBlock(x, xo));
    y[yo] = h & 0xff;
    y[yo + 1] = h >> 8;
    requant(x, xo, F16_TABLE[h]);
    for (let j = 0; j < 16; j++) y[yo + 2 + j] = L[j] | (L[j + 16] << 4);
  }
}

const subScales = new Float32Array(8);

/** IQ4_XS (136 B/256): f16 d | u16 scales_h | scales_l[4] | qs[128]; 6-bit sub-block scales ls-32. */
export function quantizeIq4Xs(x: Float32Array, xo: number, y: Uint8Array, yo: number, nb: number): void {
  for (let i = 0; i < nb; i++, xo += 256, yo += 136) {
    let amax = 0;
    let maxScale = 0;
    for (let ib = 0; ib < 8; ib++) {
      const s = fitBlock(x, xo + 32 * ib);
      subScales[ib] = s;
      if (Math.abs(s) > amax) {
        amax = Math.abs(s);
        maxScale = s;
      }
    }
    y.fill(0, yo, yo + 136);
    if (amax < EPS) continue;
    const h = f32ToF16(fr(maxScale / -32));
    y[yo] = h & 0xff;
    y[yo + 1] = h >> 8;
    const d = F16_TABLE[h];
    const id = d ? fr(1 / d) : 0;
    let sh = 0;
    for (let ib = 0; ib < 8; ib++) {
      const l = Math.max(-32, Math.min(31, Math.round(fr(id * subScales[ib]))));
      const ls = l + 32;
      y[yo + 4 + (ib >> 1)] |= (ls & 15) << (4 * (ib & 1));
      sh |= (ls >> 4) << (2 * ib);
      requant(x, xo + 32 * ib, fr(d * l));
      for (let j = 0; j < 16; j++) y[yo + 8 + 16 * ib + j] = L[j] | (L[j + 16] << 4);
    }
    y[yo + 2] = sh & 0xff;
    y[yo + 3] = sh >> 8;
  }
}
