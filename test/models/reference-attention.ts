// llama.cpp's build_attn_mha in float64 over a [positions, nKvHeads*headDim]
// K/V cache: the CPU reference of the attention kernels (kernels-attention,
// kernels-kv-quant tests).

export interface AttentionCase {
  nHeads: number; nKvHeads: number; headDim: number;
  /** The first token's position and the token count. */
  pos: number; n: number;
  scale?: number; softcap?: number; window?: number;
  /** gpt-oss: a logit per head [nHeads] that joins each softmax's denominator. */
  sinks?: ArrayLike<number>;
}

/** The outputs [n, nHeads*headDim] and the largest |score|/softcap seen (scores after scale, before the cap). */
export function refAttention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, c: AttentionCase): { out: Float64Array; maxRatio: number } {
  const { nHeads, nKvHeads, headDim, pos, n } = c;
  const scale = c.scale ?? 1 / Math.sqrt(headDim), cap = c.softcap ?? 0, window = c.window ?? 0;
  const qd = nHeads * headDim, kvd = nKvHeads * headDim;
  const out = new Float64Array(n * qd);
  let maxRatio = 0;
  for (let t = 0; t < n; t++) {
    const p = pos + t;
    const j0 = window > 0 ? Math.max(0, p + 1 - window) : 0; // p - j < window
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      const s: number[] = [];
      for (let j = j0; j <= p; j++) {
        let d = 0;
        for (let i = 0; i < headDim; i++) d += q[t * qd + h * headDim + i] * k[j * kvd + kvh * headDim + i];
        d *= scale;
        if (cap > 0) {
          maxRatio = Math.max(maxRatio, Math.abs(d) / cap);
          d = cap * Math.tanh(d / cap);
        }
        s.push(d);
      }
      const mx = Math.max(...s);
      const ex = s.map((x) => Math.exp(x - mx));
      const sum = ex.reduce((a, b) => a + b, c.sinks ? Math.exp(c.sinks[h] - mx) : 0);
      for (let jj = 0; jj < ex.length; jj++) {
        for (let i = 0; i < headDim; i++) out[t * qd + h * headDim + i] += (ex[jj] / sum) * v[(j0 + jj) * kvd + kvh * headDim + i];
      }
    }
  }
  return { out, maxRatio };
}
