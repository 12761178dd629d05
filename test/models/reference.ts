// A plain float64 Llama forward pass on dequantized weights: the CPU truth the
// GPU model is checked against. Slow and simple on purpose; one token at a time
// with an f64 KV cache. Weights are ggml row-major: W[rows][cols], y = W·x.
import type { Config } from '../../src/config.ts';
import { tensorNames } from '../../src/config.ts';
import type { GgufFile } from '../../src/gguf/types.ts';
import { dequantize } from '../../src/quant/dequant.ts';

/** Dequantized weights by GGUF tensor name (f32 values, ggml row-major). */
export type RefWeights = ReadonlyMap<string, Float32Array>;

interface RefLayer {
  attnNorm: Float32Array; wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array;
  ffnNorm: Float32Array; wGate: Float32Array; wUp: Float32Array; wDown: Float32Array;
}

/** y[r] = Σ_c W[r*cols + c]·x[c], in f64. */
export function matvec(w: Float32Array, x: Float64Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
    y[r] = s;
  }
  return y;
}

/** RMSNorm: x / sqrt(mean(x²) + eps) · weight. */
export function rmsnorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * scale * weight[i];
  return y;
}

/**
 * llama.cpp "normal" rope (arch llama): rotates adjacent pairs (x[2i], x[2i+1])
 * of each head by pos·base^(-2i/ropeDim); dims ≥ ropeDim pass through. Linear
 * rope scaling divides the position by the factor. In place on [nHeads*headDim].
 */
export function rope(x: Float64Array, nHeads: number, headDim: number, ropeDim: number, pos: number, base: number, linearFactor = 1, freqFactors?: Float32Array): void {
  const p = pos / linearFactor;
  for (let h = 0; h < nHeads; h++) {
    const o = h * headDim;
    for (let i = 0; i < ropeDim / 2; i++) {
      const theta = (p * base ** ((-2 * i) / ropeDim)) / (freqFactors?.[i] ?? 1);
      const c = Math.cos(theta), s = Math.sin(theta);
      const a = x[o + 2 * i], b = x[o + 2 * i + 1];
      x[o + 2 * i] = a * c - b * s;
      x[o + 2 * i + 1] = a * s + b * c;
    }
  }
}

export const silu = (v: number) => v / (1 + Math.exp(-v));

export class ReferenceLlama {
  readonly config: Config;
  private readonly embd: Float32Array;
  private readonly outNorm: Float32Array;
  private readonly out: Float32Array;
  private readonly layers: RefLayer[] = [];
  private readonly ropeFreqs: Float32Array | undefined;
  /** Per layer: [pos][nKvHeads*headDim]. */
  private readonly kCache: Float64Array[][] = [];
  private readonly vCache: Float64Array[][] = [];

  constructor(config: Config, w: RefWeights) {
    this.config = config;
    const get = (n: string) => {
      const t = w.get(n);
      if (!t) throw new Error(`reference: missing tensor ${n}`);
      return t;
    };
    this.embd = get(tensorNames.token_embd);
    this.outNorm = get(tensorNames.output_norm);
    this.out = w.get(tensorNames.output) ?? this.embd; // tied embeddings
    this.ropeFreqs = w.get(tensorNames.rope_freqs);
    for (let i = 0; i < config.nLayers; i++) {
      const n = tensorNames.layer(i);
      this.layers.push({
        attnNorm: get(n.attn_norm), wq: get(n.attn_q), wk: get(n.attn_k), wv: get(n.attn_v), wo: get(n.attn_output),
        ffnNorm: get(n.ffn_norm), wGate: get(n.ffn_gate), wUp: get(n.ffn_up), wDown: get(n.ffn_down),
      });
      this.kCache.push([]);
      this.vCache.push([]);
    }
  }

  /** Forgets the KV cache (positions restart at 0). */
  reset(): void {
    for (const c of this.kCache) c.length = 0;
    for (const c of this.vCache) c.length = 0;
  }

  /** Runs one token at position `pos` (must equal the cache length) and returns its logits. */
  step(token: number, pos: number): Float64Array {
    const c = this.config;
    const { dim, nHeads, nKvHeads, headDim, ffnDim } = c;
    if (pos !== this.kCache[0]?.length && c.nLayers > 0) throw new Error(`reference: pos ${pos} != cache length ${this.kCache[0].length}`);
    const linear = c.ropeScaling.type === 'linear' ? c.ropeScaling.factor : 1;
    const qDim = nHeads * headDim, kvDim = nKvHeads * headDim;
    const group = nHeads / nKvHeads;
    const scale = 1 / Math.sqrt(headDim);

    // Embedding row.
    const x = new Float64Array(dim);
    for (let i = 0; i < dim; i++) x[i] = this.embd[token * dim + i];

    for (let l = 0; l < c.nLayers; l++) {
      const L = this.layers[l];
      // Attention block.
      const h = rmsnorm(x, L.attnNorm, c.rmsEps);
      const q = matvec(L.wq, h, qDim, dim);
      const k = matvec(L.wk, h, kvDim, dim);
      const v = matvec(L.wv, h, kvDim, dim);
      rope(q, nHeads, headDim, c.ropeDim, pos, c.ropeTheta, linear, this.ropeFreqs);
      rope(k, nKvHeads, headDim, c.ropeDim, pos, c.ropeTheta, linear, this.ropeFreqs);
      this.kCache[l].push(k);
      this.vCache[l].push(v);
      const att = new Float64Array(qDim);
      const n = pos + 1;
      const scores = new Float64Array(n);
      for (let hh = 0; hh < nHeads; hh++) {
        const kvh = Math.floor(hh / group);
        let mx = -Infinity;
        for (let t = 0; t < n; t++) {
          const kt = this.kCache[l][t];
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q[hh * headDim + d] * kt[kvh * headDim + d];
          scores[t] = s * scale;
          if (scores[t] > mx) mx = scores[t];
        }
        let sum = 0;
        for (let t = 0; t < n; t++) {
          scores[t] = Math.exp(scores[t] - mx);
          sum += scores[t];
        }
        for (let t = 0; t < n; t++) {
          const p = scores[t] / sum;
          const vt = this.vCache[l][t];
          for (let d = 0; d < headDim; d++) att[hh * headDim + d] += p * vt[kvh * headDim + d];
        }
      }
      const o = matvec(L.wo, att, dim, qDim);
      for (let i = 0; i < dim; i++) x[i] += o[i];

      // Feed-forward block (SwiGLU).
      const h2 = rmsnorm(x, L.ffnNorm, c.rmsEps);
      const g = matvec(L.wGate, h2, ffnDim, dim);
      const u = matvec(L.wUp, h2, ffnDim, dim);
      for (let i = 0; i < ffnDim; i++) g[i] = silu(g[i]) * u[i];
      const down = matvec(L.wDown, g, dim, ffnDim);
      for (let i = 0; i < dim; i++) x[i] += down[i];
    }
    const xn = rmsnorm(x, this.outNorm, c.rmsEps);
    return matvec(this.out, xn, c.vocabSize, dim);
  }

  /** Runs tokens from position pos and returns each token's logits. */
  run(tokens: number[], pos: number): Float64Array[] {
    return tokens.map((t, i) => this.step(t, pos + i));
  }
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Indices of the k largest values, largest first. */
export function topK(a: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: a.length }, (_, i) => i).sort((x, y) => a[y] - a[x]).slice(0, k);
}

/** Dequantizes every tensor of a GGUF file (test helper; small models only). */
export async function loadRefWeights(file: GgufFile): Promise<Map<string, Float32Array>> {
  const w = new Map<string, Float32Array>();
  for (const t of file.tensors) w.set(t.name, dequantize(t.type.id, await file.readTensor(t), t.nElements));
  return w;
}
