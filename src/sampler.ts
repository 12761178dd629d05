// Next-token sampling from a logits vector, in llama.cpp's default chain order:
//   penalties -> top-k -> top-p -> min-p -> temperature -> dist
// (llama.cpp also has dry / typical / xtc between these; qllm does not implement them).
// temperature 0 is greedy: argmax of the penalized logits, ties to the lowest id.
//
// Shapes: logits is Float32Array[>= vocabSize] (one row of the output projection);
// history is the token ids so far (prompt + generated), newest last.
import type { SamplerOptions, TokenLogprob } from './api.ts';
import { GpuError, UsageError } from './errors.ts';

/** llama.cpp's defaults (common/common.h), except repeatPenalty 1 = off, as there too. */
export const SAMPLER_DEFAULTS = {
  temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.0, repeatLastN: 64,
} as const;

/** Throws UsageError naming the first bad option and a sensible value (the option, then the CLI flag). */
export function validateSamplerOptions(o: SamplerOptions): void {
  const bad = (what: string, v: unknown, range: string, fix: string) => {
    throw new UsageError(`${what} ${String(v)} is ${range}: use e.g. ${fix}`);
  };
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (o.temperature !== undefined && (!num(o.temperature) || o.temperature < 0)) bad('temperature', o.temperature, 'out of range (must be >= 0; 0 = greedy)', 'temperature 0.8 (--temp 0.8)');
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) bad('top-k', o.topK, 'not an integer >= 0 (0 = off)', 'topK 40 (--top-k 40)');
  if (o.topP !== undefined && (!num(o.topP) || o.topP < 0 || o.topP > 1)) bad('top-p', o.topP, 'out of range 0..1', 'topP 0.9 (--top-p 0.9)');
  if (o.minP !== undefined && (!num(o.minP) || o.minP < 0 || o.minP > 1)) bad('min-p', o.minP, 'out of range 0..1', 'minP 0.05 (--min-p 0.05)');
  if (o.repeatPenalty !== undefined && (!num(o.repeatPenalty) || o.repeatPenalty <= 0)) bad('repeat-penalty', o.repeatPenalty, 'out of range (must be > 0; 1 = off)', 'repeatPenalty 1.1 (--repeat-penalty 1.1)');
  if (o.repeatLastN !== undefined && (!Number.isInteger(o.repeatLastN) || o.repeatLastN < -1)) bad('repeat-last-n', o.repeatLastN, 'not an integer >= -1 (-1 = whole history, 0 = off)', 'repeatLastN 64');
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) bad('seed', o.seed, 'not an integer', 'seed 42 (--seed 42)');
}

/**
 * sfc32 (Chris Doty-Humphrey's small fast counter PRNG), seeded through splitmix32
 * from both 32-bit halves of the seed so seeds that differ only high up still diverge.
 */
function makeRng(seed: number): () => number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let s = (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split() ^ hi;
  let c = split();
  let d = 1;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next(); // decorrelate from the seed
  // 53-bit uniform in [0, 1)
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repeatPenalty: number;
  readonly repeatLastN: number;
  readonly seed: number;
  private readonly vocabSize: number;
  private readonly rand: () => number;
  // Scratch, reused across calls (one candidate list of at most vocabSize entries).
  private readonly ids: Int32Array;
  private readonly vals: Float32Array;
  private readonly work: Float32Array;

  constructor(opts: SamplerOptions, vocabSize: number) {
    validateSamplerOptions(opts);
    if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new UsageError(`vocabulary size ${vocabSize} is not a positive integer: pass the model's vocabSize`);
    this.temperature = opts.temperature ?? SAMPLER_DEFAULTS.temperature;
    this.topK = opts.topK ?? SAMPLER_DEFAULTS.topK;
    this.topP = opts.topP ?? SAMPLER_DEFAULTS.topP;
    this.minP = opts.minP ?? SAMPLER_DEFAULTS.minP;
    this.repeatPenalty = opts.repeatPenalty ?? SAMPLER_DEFAULTS.repeatPenalty;
    this.repeatLastN = opts.repeatLastN ?? SAMPLER_DEFAULTS.repeatLastN;
    this.seed = opts.seed ?? Math.floor(Math.random() * 4294967296);
    this.vocabSize = vocabSize;
    this.rand = makeRng(this.seed);
    this.ids = new Int32Array(vocabSize);
    this.vals = new Float32Array(vocabSize);
    this.work = new Float32Array(vocabSize);
  }

  sample(logits: Float32Array, history: readonly number[] = []): number {
    const n = this.vocabSize;
    if (logits.length < n) throw new UsageError(`logits have ${logits.length} entries for a vocabulary of ${n}: pass the full output row`);

    // Repetition penalty (llama.cpp): each distinct id in the window, once: positive
    // logits divided by the penalty, negative ones multiplied. Applied to a copy.
    const work = this.work;
    work.set(logits.subarray(0, n));
    if (this.repeatPenalty !== 1 && this.repeatLastN !== 0) {
      const from = this.repeatLastN < 0 ? 0 : Math.max(0, history.length - this.repeatLastN);
      const seen = new Set<number>();
      for (let i = from; i < history.length; i++) {
        const id = history[i];
        if (!(id >= 0 && id < n) || seen.has(id)) continue;
        seen.add(id);
        const l = work[id];
        work[id] = l <= 0 ? l * this.repeatPenalty : l / this.repeatPenalty;
      }
    }

    checkFinite(work, n);

    // Greedy: argmax, ties to the lowest id (strict >).
    if (this.temperature === 0) {
      let best = 0;
      let bv = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        if (work[i] > bv) { bv = work[i]; best = i; }
      }
      return best;
    }

    let m: number; // candidates in ids/vals[0..m)
    let sorted: boolean;
    if (this.topK > 0 && this.topK < n) {
      m = this.topKSelect(work, n, this.topK);
      sorted = true;
    } else {
      for (let i = 0; i < n; i++) this.ids[i] = i;
      this.vals.set(work);
      m = n;
      sorted = false;
    }
    m = this.topPMinP(m, sorted);

    // Temperature, then draw from softmax(vals / T) over the survivors.
    const { ids, vals } = this;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < m; i++) if (vals[i] > max) max = vals[i];
    if (max === Number.NEGATIVE_INFINITY || Number.isNaN(max)) return ids[0];
    const invT = 1 / this.temperature;
    let z = 0;
    for (let i = 0; i < m; i++) {
      const w = !Number.isNaN(vals[i]) ? Math.exp((vals[i] - max) * invT) : 0;
      vals[i] = w;
      z += w;
    }
    let u = this.rand() * z;
    for (let i = 0; i < m; i++) {
      u -= vals[i];
      if (u < 0) return ids[i];
    }
    // Rounding left u >= 0: the last candidate with weight.
    for (let i = m - 1; i >= 0; i--) if (vals[i] > 0) return ids[i];
    return ids[0];
  }

  /** Top k of work[0..n) into ids/vals[0..k), sorted by value desc then id asc. O(n log k). */
  private topKSelect(work: Float32Array, n: number, k: number): number {
    // Min-heap on (value, -id): the root is the weakest kept candidate.
    const hi = new Int32Array(k);
    const hv = new Float64Array(k);
    const weaker = (va: number, ia: number, vb: number, ib: number) => va < vb || (va === vb && ia > ib);
    let size = 0;
    const swap = (x: number, y: number) => {
      const tv = hv[x]; hv[x] = hv[y]; hv[y] = tv;
      const ti = hi[x]; hi[x] = hi[y]; hi[y] = ti;
    };
    const siftDown = (pos: number) => {
      for (;;) {
        const l = 2 * pos + 1;
        if (l >= size) return;
        let c = l;
        if (l + 1 < size && weaker(hv[l + 1], hi[l + 1], hv[l], hi[l])) c = l + 1;
        if (!weaker(hv[c], hi[c], hv[pos], hi[pos])) return;
        swap(c, pos);
        pos = c;
      }
    };
    for (let i = 0; i < n; i++) {
      let v = work[i];
      if (Number.isNaN(v)) v = Number.NEGATIVE_INFINITY; // NaN ranks last
      if (size < k) {
        let pos = size++;
        hv[pos] = v; hi[pos] = i;
        while (pos > 0) {
          const p = (pos - 1) >> 1;
          if (!weaker(hv[pos], hi[pos], hv[p], hi[p])) break;
          swap(p, pos);
          pos = p;
        }
      } else if (weaker(hv[0], hi[0], v, i)) {
        hv[0] = v; hi[0] = i;
        siftDown(0);
      }
    }
    for (let j = 0; j < size; j++) { this.ids[j] = hi[j]; this.vals[j] = hv[j]; }
    sortDesc(this.ids, this.vals, size);
    return size;
  }

  /**
   * top-p (smallest prefix, by value, whose softmax mass over the current candidates
   * reaches p) then min-p (keep value >= max + ln(minP)). Both keep a prefix of the
   * sorted order, so only the head needs sorting: candidates above max - d are sorted
   * with d doubling until the top-p cut is found inside them. Keeps at least one.
   */
  private topPMinP(m: number, sorted: boolean): number {
    const { ids, vals } = this;
    const useP = this.topP < 1;
    const useMin = this.minP > 0;
    if (!useP && !useMin) return m;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < m; i++) if (vals[i] > max) max = vals[i];
    if (max === Number.NEGATIVE_INFINITY) return m;
    const minCut = useMin ? max + Math.log(this.minP) : Number.NEGATIVE_INFINITY;
    let z = 0;
    if (useP) for (let i = 0; i < m; i++) z += Math.exp(vals[i] - max);

    const keepPrefix = (len: number): number => {
      // ids/vals[0..len) sorted desc; walk top-p, then min-p, on that prefix.
      let keep = len;
      if (useP) {
        let cum = 0;
        for (let i = 0; i < len; i++) {
          cum += Math.exp(vals[i] - max) / z;
          if (cum >= this.topP) { keep = i + 1; break; }
          if (i === len - 1) keep = -1; // cut not inside this prefix
        }
      }
      if (keep < 0) return -1;
      let j = 1;
      while (j < keep && vals[j] >= minCut) j++;
      return Math.max(1, j);
    };

    if (sorted) {
      const k = keepPrefix(m);
      return k < 0 ? m : k;
    }
    // Unsorted (no top-k): partition candidates above a threshold to the front, sort them.
    for (let d = 8; ; d *= 2) {
      const thr = Math.max(minCut, max - d);
      const last = thr <= minCut || d > 1e4; // threshold covers everything that can survive
      const t = last ? minCut : thr;
      let len = 0;
      for (let i = len; i < m; i++) {
        if (vals[i] >= t) {
          const vi = vals[i]; const ii = ids[i];
          vals[i] = vals[len]; ids[i] = ids[len];
          vals[len] = vi; ids[len] = ii;
          len++;
        }
      }
      sortDesc(ids, vals, len);
      const k = keepPrefix(len);
      if (k >= 0) return k;
      if (last) return len > 0 ? len : 1;
    }
  }
}

/**
 * Every sampling path needs real logits: NaN or +Infinity (NaN weights, a bad
 * RoPE base) would otherwise come out as a stream of token 0 and exit 0. -Infinity
 * is a masked token, but not all of them.
 */
function checkFinite(work: Float32Array, n: number): void {
  let any = false;
  for (let i = 0; i < n; i++) {
    const v = work[i];
    if (Number.isNaN(v) || v === Number.POSITIVE_INFINITY) {
      throw new GpuError(`the logits are not finite (${v} at token ${i}): the model file may be corrupt (NaN weights or bad hyper-parameters); try noF16 (--no-f16) or another file`);
    }
    if (v !== Number.NEGATIVE_INFINITY) any = true;
  }
  if (!any) throw new GpuError('every logit is -Infinity: no token can be sampled; the model file may be corrupt');
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const ID_SPAN = 2 ** 21; // ids < 2M; 32 value bits + 21 id bits fit a double exactly

/**
 * Sorts ids/vals[0..len) by value desc, then id asc. Each pair is packed into one
 * exactly-representable double (order-preserving float bits, then id) so the sort is
 * the engine's native numeric sort, not a comparator callback.
 */
function sortDesc(ids: Int32Array, vals: Float32Array, len: number): void {
  const keys = new Float64Array(len);
  for (let j = 0; j < len; j++) {
    f32[0] = vals[j];
    const b = u32[0];
    const ordered = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0; // larger value -> larger key
    keys[j] = (0xffffffff - ordered) * ID_SPAN + ids[j];
  }
  keys.sort();
  for (let j = 0; j < len; j++) {
    const id = keys[j] % ID_SPAN;
    const ordered = 0xffffffff - (keys[j] - id) / ID_SPAN;
    u32[0] = ordered & 0x80000000 ? (ordered & 0x7fffffff) >>> 0 : ~ordered >>> 0;
    ids[j] = id;
    vals[j] = f32[0];
  }
}

/**
 * Log-softmax of logits[0..n) (raw: before penalties, temperature and filters),
 * in float64: `id`'s value and the `top` most likely ids, value desc then id asc,
 * the order greedy picks in (so at temperature 0 the chosen id comes first).
 * NaN and -Infinity logits are impossible tokens (-Infinity), never listed.
 */
export function logprobsOf(logits: Float32Array, n: number, id: number, top: number): { logprob: number; topLogprobs: TokenLogprob[] } {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  let z = 0;
  for (let i = 0; i < n; i++) if (logits[i] > Number.NEGATIVE_INFINITY) z += Math.exp(logits[i] - max);
  const lse = max + Math.log(z);
  const at = (i: number) => (logits[i] > Number.NEGATIVE_INFINITY ? logits[i] - lse : Number.NEGATIVE_INFINITY);
  // Insertion into a sorted list of at most `top` ids: O(n·top), top <= 20.
  const best: number[] = [];
  for (let i = 0; i < n && top > 0; i++) {
    const v = logits[i];
    if (!(v > Number.NEGATIVE_INFINITY)) continue;
    if (best.length === top && !(v > logits[best[top - 1]])) continue;
    let j = best.length < top ? best.length : top - 1;
    while (j > 0 && logits[best[j - 1]] < v) {
      best[j] = best[j - 1];
      j--;
    }
    best[j] = i;
  }
  return { logprob: at(id), topLogprobs: best.map((t) => ({ tokenId: t, logprob: at(t) })) };
}
