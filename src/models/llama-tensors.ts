// Load-time checks for a llama-family GGUF: architecture, hyper-parameters
// the kernels rely on, and every tensor's presence and shape. Each failure is
// a one-line GgufError naming the bad value.
import type { Config } from '../config.ts';
import { tensorNames } from '../config.ts';
import { GgufError } from '../errors.ts';
import type { GgufFile, TensorInfo } from '../gguf/types.ts';
import { tensorShape } from '../gpu/weights.ts';

export const SUPPORTED_ARCHS: readonly string[] = ['llama'];

export interface LlamaTensors {
  tokenEmbd: TensorInfo;
  outputNorm: TensorInfo;
  /** Absent when the embeddings are tied (the output projection reuses token_embd). */
  output: TensorInfo | undefined;
  layers: Record<keyof ReturnType<typeof tensorNames.layer>, TensorInfo>[];
  /** Optional per-pair rope angle divisors [ropeDim/2]. */
  ropeFreqs: TensorInfo | undefined;
  /** Vocabulary size as the weights have it (token_embd rows). */
  vocab: number;
}

/** Validates the config and tensors of a llama model; throws GgufError on the first problem. */
export function checkLlama(file: GgufFile, c: Config): LlamaTensors {
  if (!SUPPORTED_ARCHS.includes(c.arch)) {
    throw new GgufError(`architecture '${c.arch}' is not supported; qllm runs llama-family models (llama, mistral, tinyllama)`);
  }
  const where = file.path;
  const bad = (what: string) => new GgufError(`${what} in ${where}: the file is corrupt or not a llama model`);
  if (!(c.dim > 0 && c.nLayers > 0 && c.nHeads > 0 && c.nKvHeads > 0 && c.ffnDim > 0)) {
    throw bad(`model sizes dim=${c.dim} layers=${c.nLayers} heads=${c.nHeads} kv_heads=${c.nKvHeads} ffn=${c.ffnDim} must all be positive`);
  }
  if (c.nHeads % c.nKvHeads !== 0) throw bad(`head count ${c.nHeads} is not a multiple of the KV head count ${c.nKvHeads}`);
  if (!Number.isInteger(c.headDim) || c.headDim % 2 !== 0 || c.headDim > 256) {
    throw new GgufError(`head size ${c.headDim} in ${where} is not supported: qllm needs an even head size of at most 256`);
  }
  if (c.ropeDim % 2 !== 0 || c.ropeDim > c.headDim || c.ropeDim <= 0) throw bad(`rope dimension ${c.ropeDim} must be even and within the head size ${c.headDim}`);
  if (c.ropeScaling.type !== 'none' && c.ropeScaling.type !== 'linear') {
    throw new GgufError(`rope scaling '${c.ropeScaling.type}' in ${where} is not supported: qllm applies 'linear' scaling only`);
  }

  const need = (name: string): TensorInfo => {
    const t = file.tensor(name);
    if (!t) throw new GgufError(`tensor ${name} is missing from ${where}: the file is incomplete or not a llama model`);
    return t;
  };
  const shape = (t: TensorInfo, rows: number, cols: number) => {
    const s = tensorShape(t);
    if (s.rows !== rows || s.cols !== cols) {
      throw bad(`tensor ${t.name} is [${s.rows} rows × ${s.cols} cols] but the metadata implies [${rows} × ${cols}]`);
    }
    return t;
  };
  const tokenEmbd = need(tensorNames.token_embd);
  const vocab = tensorShape(tokenEmbd).rows;
  shape(tokenEmbd, vocab, c.dim);
  if (c.vocabSize && c.vocabSize !== vocab) throw bad(`vocabulary of ${c.vocabSize} tokens does not match token_embd's ${vocab} rows`);
  const outputNorm = shape(need(tensorNames.output_norm), 1, c.dim);
  const out = file.tensor(tensorNames.output);
  const output = out ? shape(out, vocab, c.dim) : undefined;
  const qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
  const layers: LlamaTensors['layers'] = [];
  for (let i = 0; i < c.nLayers; i++) {
    const n = tensorNames.layer(i);
    layers.push({
      attn_norm: shape(need(n.attn_norm), 1, c.dim),
      attn_q: shape(need(n.attn_q), qDim, c.dim),
      attn_k: shape(need(n.attn_k), kvDim, c.dim),
      attn_v: shape(need(n.attn_v), kvDim, c.dim),
      attn_output: shape(need(n.attn_output), c.dim, qDim),
      ffn_norm: shape(need(n.ffn_norm), 1, c.dim),
      ffn_gate: shape(need(n.ffn_gate), c.ffnDim, c.dim),
      ffn_up: shape(need(n.ffn_up), c.ffnDim, c.dim),
      ffn_down: shape(need(n.ffn_down), c.dim, c.ffnDim),
    });
  }
  const ropeFreqs = file.tensor(tensorNames.rope_freqs);
  if (ropeFreqs) shape(ropeFreqs, 1, c.ropeDim / 2);
  return { tokenEmbd, outputNorm, output, layers, vocab, ropeFreqs };
}
