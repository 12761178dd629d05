// Embeddings: one vector per text from the final-normed hidden states, pooled
// as the file's {arch}.pooling_type says (llama.cpp's llama_pooling_type:
// mean, cls = first token, last token; a generation model with none pools the
// last token, as node-llama-cpp and llama-server do for it), then normalised
// to unit length (llama-server's default, embd_normalize 2).
//
// Shapes: hidden [n, dim] f32 per text (LlamaModel.hidden); out [dim] per text.
import type { EmbedOptions } from './api.ts';
import type { PoolingType } from './config.ts';
import { UsageError } from './errors.ts';

/** The pooling an embedding of this model uses (options first, then the file). */
export function poolingFor(file: PoolingType, requested?: EmbedOptions['pooling']): 'mean' | 'cls' | 'last' {
  const p = requested ?? (file === 'none' ? 'last' : file);
  if (p === 'rank') throw new UsageError('this is a reranker (pooling_type rank): it scores pairs, it does not embed; qllm has no reranking yet');
  if (p !== 'mean' && p !== 'cls' && p !== 'last') throw new UsageError(`pooling '${String(p)}' is not one of mean, cls, last`);
  return p;
}

/** Pools [n, dim] hidden states into one [dim] vector (float64 sums), unit length if `normalize`. */
export function pool(hidden: Float32Array, n: number, dim: number, pooling: 'mean' | 'cls' | 'last', normalize: boolean): number[] {
  const out = new Array<number>(dim).fill(0);
  if (pooling === 'mean') {
    for (let t = 0; t < n; t++) for (let j = 0; j < dim; j++) out[j] += hidden[t * dim + j];
    for (let j = 0; j < dim; j++) out[j] /= n;
  } else {
    const row = pooling === 'cls' ? 0 : n - 1;
    for (let j = 0; j < dim; j++) out[j] = hidden[row * dim + j];
  }
  if (normalize) {
    let ss = 0;
    for (const v of out) ss += v * v;
    const norm = Math.sqrt(ss);
    if (norm > 0) for (let j = 0; j < dim; j++) out[j] /= norm;
  }
  return out;
}
