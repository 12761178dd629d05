// Load-time checks for every family: hyper-parameters the kernels rely on,
// and every tensor's presence and shape. Each failure is a one-line GgufError
// naming the bad value. A tensor the family does not use is refused by name,
// so a feature qllm lacks fails here, never as wrong output.
import type { Config } from '../config.ts';
import { tensorNames } from '../config.ts';
import { GgufError, printable } from '../errors.ts';
import type { GgufFile, TensorInfo } from '../gguf/types.ts';
import { tensorShape } from '../gpu/weights.ts';
import { type Plan, planModel } from './family.ts';
import { moeTensors } from './moe-tensors.ts';

export interface LayerTensors {
  /** Absent for OLMo2 (no pre-norms). */
  attnNorm?: TensorInfo;
  /** q, k, v: row views of attn_qkv where the file fuses them (Phi-3). */
  q: TensorInfo;
  k: TensorInfo;
  v: TensorInfo;
  qBias?: TensorInfo;
  kBias?: TensorInfo;
  vBias?: TensorInfo;
  qNorm?: TensorInfo;
  kNorm?: TensorInfo;
  o: TensorInfo;
  attnPostNorm?: TensorInfo;
  ffnNorm?: TensorInfo;
  /**
   * gate and up: row views of ffn_up where the file fuses them (Phi-3: gate rows first).
   * MoE layers (gateInp set): the 3-D expert tensors ffn_{gate,up,down}_exps,
   * [experts, ff, dim] and [experts, dim, ff] (ggml dims reversed).
   */
  gate: TensorInfo;
  up: TensorInfo;
  down: TensorInfo;
  ffnPostNorm?: TensorInfo;
  /** MoE layers: the router ffn_gate_inp [experts, dim] (kept F32 by llama.cpp's quantizer). */
  gateInp?: TensorInfo;
  /** gpt-oss: the router's bias [experts]; the experts' biases, ggml dims [ff, experts] (gate, up) and [dim, experts] (down). */
  gateInpBias?: TensorInfo;
  gateExpsBias?: TensorInfo;
  upExpsBias?: TensorInfo;
  downExpsBias?: TensorInfo;
  /** Qwen2-MoE's shared expert: its gate [dim] and SwiGLU FFN [sharedFf, dim] (gate, up), [dim, sharedFf] (down). */
  gateInpShexp?: TensorInfo;
  gateShexp?: TensorInfo;
  upShexp?: TensorInfo;
  downShexp?: TensorInfo;
  /** gpt-oss: attention sinks [heads] and attn_output's bias [dim]. */
  sinks?: TensorInfo;
  oBias?: TensorInfo;
}

export interface ModelTensors {
  tokenEmbd: TensorInfo;
  outputNorm: TensorInfo;
  /** Absent when the embeddings are tied (the output projection reuses token_embd). */
  output: TensorInfo | undefined;
  layers: LayerTensors[];
  /** Per-pair rope angle divisors [ropeDim/2] of the plan's tables (rope_freqs or LongRoPE's long/short), if any. */
  ropeFactors: TensorInfo | undefined;
  /** Vocabulary size as the weights have it (token_embd rows). */
  vocab: number;
  plan: Plan;
}

/** Rows first…first+n of a 2-D tensor (or elements of a 1-D one) as a tensor of its own: the same bytes, read in place. */
export function rowView(t: TensorInfo, first: number, n: number, name: string): TensorInfo {
  const { rows, cols } = tensorShape(t);
  const oneD = t.dims.length === 1;
  const count = oneD ? cols : rows;
  const unit = t.nBytes / count; // bytes per row (or element)
  return { name, dims: oneD ? [n] : [cols, n], type: t.type, nElements: oneD ? n : n * cols, nBytes: n * unit, offset: t.offset + first * unit };
}

/** Consecutive row views of a fused tensor (q|k|v, its bias, gate|up), one per [rows, name]. */
function splitRows(t: TensorInfo, parts: [number, string][]): TensorInfo[] {
  let at = 0;
  return parts.map(([rows, name]) => {
    const v = rowView(t, at, rows, name);
    at += rows;
    return v;
  });
}

/** Validates the config and tensors of a model; throws GgufError on the first problem. */
export function checkModel(file: GgufFile, c: Config, contextLength = c.contextLength): ModelTensors {
  const where = file.path;
  const plan = planModel(c, contextLength, (n) => !!file.tensor(n), where);
  const f = plan.family;
  const arch = printable(c.arch); // a name from the file, escaped for messages
  const bad = (what: string) => new GgufError(`${what} in ${where}: the file is corrupt or not a '${arch}' model`);
  if (!(c.dim > 0 && c.nLayers > 0 && c.nHeads > 0 && c.nKvHeads > 0 && c.ffnDim > 0)) {
    throw bad(`model sizes dim=${c.dim} layers=${c.nLayers} heads=${c.nHeads} kv_heads=${c.nKvHeads} ffn=${c.ffnDim} must all be positive`);
  }
  if (c.nHeads % c.nKvHeads !== 0) throw bad(`head count ${c.nHeads} is not a multiple of the KV head count ${c.nKvHeads}`);
  if (!Number.isInteger(c.headDim) || c.headDim % 2 !== 0 || c.headDim > 256) {
    throw new GgufError(`head size ${c.headDim} in ${where} is not supported: qllm needs an even head size of at most 256`);
  }
  if (c.valueDim !== c.headDim) throw new GgufError(`V head size ${c.valueDim} differs from the K head size ${c.headDim} in ${where}: qllm does not support that yet`);
  if (c.ropeDim % 2 !== 0 || c.ropeDim > c.headDim || c.ropeDim <= 0) throw bad(`rope dimension ${c.ropeDim} must be even and within the head size ${c.headDim}`);

  const used = new Set<string>();
  const opt = (name: string): TensorInfo | undefined => {
    const t = file.tensor(name);
    if (t) used.add(name);
    return t;
  };
  const need = (name: string, why = ''): TensorInfo => {
    const t = opt(name);
    if (!t) throw new GgufError(`tensor ${name} is missing from ${where}: the file is incomplete or not a '${arch}' model${why}`);
    return t;
  };
  const shape = (t: TensorInfo, rows: number, cols: number) => {
    const s = tensorShape(t);
    if (s.rows !== rows || s.cols !== cols) {
      throw bad(`tensor ${t.name} is [${s.rows} rows × ${s.cols} cols] but the metadata implies [${rows} × ${cols}]`);
    }
    return t;
  };
  const vec = (t: TensorInfo | undefined, n: number) => t && shape(t, 1, n);
  const tokenEmbd = need(tensorNames.token_embd);
  const vocab = tensorShape(tokenEmbd).rows;
  shape(tokenEmbd, vocab, c.dim);
  if (c.vocabSize && c.vocabSize !== vocab) throw bad(`vocabulary of ${c.vocabSize} tokens does not match token_embd's ${vocab} rows`);
  const outputNorm = shape(need(tensorNames.output_norm), 1, c.dim);
  const out = f.outputRequired ? need(tensorNames.output, `: llama.cpp's '${arch}' graph has no tied output head`) : opt(tensorNames.output);
  const output = out ? shape(out, vocab, c.dim) : undefined;
  const qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
  const pre = f.preNorm !== false;
  const layers: LayerTensors[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    const n = tensorNames.layer(i);
    const fused = opt(n.attn_qkv);
    let q: TensorInfo, k: TensorInfo, v: TensorInfo, qBias: TensorInfo | undefined, kBias: TensorInfo | undefined, vBias: TensorInfo | undefined;
    if (fused) {
      shape(fused, qDim + 2 * kvDim, c.dim);
      [q, k, v] = splitRows(fused, [[qDim, n.attn_q], [kvDim, n.attn_k], [kvDim, n.attn_v]]);
      const fb = vec(opt(n.attn_qkv_bias), qDim + 2 * kvDim);
      if (fb) [qBias, kBias, vBias] = splitRows(fb, [[qDim, n.attn_q_bias], [kvDim, n.attn_k_bias], [kvDim, n.attn_v_bias]]);
    } else {
      q = shape(need(n.attn_q), qDim, c.dim);
      k = shape(need(n.attn_k), kvDim, c.dim);
      v = shape(need(n.attn_v), kvDim, c.dim);
      qBias = vec(opt(n.attn_q_bias), qDim);
      kBias = vec(opt(n.attn_k_bias), kvDim);
      vBias = vec(opt(n.attn_v_bias), kvDim);
    }
    const qkWhy = ` (the '${arch}' family normalises q and k)`;
    const moe = plan.moe && moeTensors(i, plan.moe, c.dim, need, shape, bad);
    const gateT = moe ? undefined : opt(n.ffn_gate);
    const upT = moe ? moe.up : need(n.ffn_up);
    let gate: TensorInfo, up: TensorInfo;
    if (moe) {
      [gate, up] = [moe.gate, moe.up];
    } else if (gateT) {
      gate = shape(gateT, c.ffnDim, c.dim);
      up = shape(upT, c.ffnDim, c.dim);
    } else {
      // gate|up fused in ffn_up (Phi-3): ggml_swiglu takes the first half of the rows as the gate.
      shape(upT, 2 * c.ffnDim, c.dim);
      [gate, up] = splitRows(upT, [[c.ffnDim, n.ffn_gate], [c.ffnDim, n.ffn_up]]);
    }
    layers.push({
      attnNorm: pre ? vec(need(n.attn_norm), c.dim) : undefined,
      q, k, v, qBias, kBias, vBias,
      qNorm: f.qkNorm ? vec(need(n.attn_q_norm, qkWhy), f.qkNorm === 'head' ? c.headDim : qDim) : undefined,
      kNorm: f.qkNorm ? vec(need(n.attn_k_norm, qkWhy), f.qkNorm === 'head' ? c.headDim : kvDim) : undefined,
      o: shape(need(n.attn_output), c.dim, qDim),
      attnPostNorm: f.postNorm ? vec(need(n.attn_post_norm), c.dim) : undefined,
      // gpt-oss names its FFN pre-norm post_attention_norm (llama.cpp's attn_post_norm, applied to ffn_inp).
      ffnNorm: pre ? vec(need(f.ffnNormIsPostAttn ? n.attn_post_norm : n.ffn_norm), c.dim) : undefined,
      gate, up,
      down: moe ? moe.down : shape(need(n.ffn_down), c.dim, c.ffnDim),
      ffnPostNorm: f.postNorm ? vec(need(n.ffn_post_norm), c.dim) : undefined,
      gateInp: moe?.gateInp,
      gateInpBias: moe?.gateInpBias,
      gateExpsBias: moe?.gateBias,
      upExpsBias: moe?.upBias,
      downExpsBias: moe?.downBias,
      gateInpShexp: moe?.gateInpShexp,
      gateShexp: moe?.gateShexp,
      upShexp: moe?.upShexp,
      downShexp: moe?.downShexp,
      sinks: f.sinks ? vec(need(n.attn_sinks, ' (gpt-oss attention has sinks)'), c.nHeads) : undefined,
      oBias: f.sinks ? vec(need(n.attn_output_bias), c.dim) : undefined,
    });
  }
  const factorName = { freqs: tensorNames.rope_freqs, long: tensorNames.rope_factors_long, short: tensorNames.rope_factors_short, none: '' }[plan.ropes[0].factors];
  const ropeFactors = factorName ? vec(opt(factorName), c.ropeDim / 2) : undefined;
  // LongRoPE files carry both; the one not chosen for this context is still known.
  opt(tensorNames.rope_factors_long);
  opt(tensorNames.rope_factors_short);
  for (const t of file.tensors) {
    if (!used.has(t.name)) {
      throw new GgufError(`tensor ${printable(t.name)} in ${where} is not supported for '${arch}' models: qllm does not implement the feature it belongs to (llama.cpp may)`);
    }
  }
  return { tokenEmbd, outputNorm, output, layers, vocab, ropeFactors, plan };
}
