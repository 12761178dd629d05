// The GPU memory a model takes, computed before anything is allocated: every
// buffer LlamaModel.load makes (weights in their upload parts, KV caches, rope
// tables, activations, readback), from the config and tensor list alone. The
// loader checks the plan against the memory budget and the adapter's limits
// first, so an impossible context or budget is refused in one line instead of
// after minutes of uploads, or a 3 GB rope table. `qllm info` shows the same
// figures (estimateMemory).
import type { Config } from '../config.ts';
import { readConfig } from '../config.ts';
import { GgufError, GpuError, printable, UsageError } from '../errors.ts';
import type { GgufFile, TensorInfo } from '../gguf/types.ts';
import { type Engine, fmtBytes } from '../gpu/engine.ts';
import { gpuFormat, partBytes, rowBytes } from '../gpu/formats.ts';
import { tensorShape } from '../gpu/weights.ts';
import { DECODERS } from '../quant/dequant.ts';
import { checkModel, type ModelTensors } from './llama-tensors.ts';
import { type KvType, kvBufferBytes } from './kv-cache.ts';
import { align256 } from './llama-parts.ts';
import { moeActivations } from './moe-layer.ts';
import { modelQ8xBytes } from './tile-matmul.ts';

export interface MemoryPlanOptions {
  /** KV-cache length in tokens. */
  contextLength: number;
  /** KV cache in f16 (an adapter with shader-f16 and no noF16); else f32, twice the bytes. Default true. */
  kvF16?: boolean;
  /** KV cache type (kv-cache.ts); takes over from kvF16 when given. */
  kvType?: KvType;
  /** Prompt tokens per forward pass (LlamaLoadOptions.maxBatch). Default 64. */
  maxBatch?: number;
  /** Attention split in chunks (GPU kernels: a partials buffer per layer). Default true, the larger. */
  splitAttention?: boolean;
  attentionChunk?: number;
  /** The adapter's maxStorageBufferBindingSize: weights upload in parts of at most this. Default: one part per tensor. */
  maxBindingBytes?: number;
  /** Sequences the KV cache holds (LoadOptions.parallel), each of contextLength positions. Default 1. */
  sequences?: number;
}

/** One buffer (or `count` alike, one per layer) of the plan. */
export interface PlannedBuffer {
  label: string;
  bytes: number;
  count: number;
  category: 'weights' | 'kv' | 'activations' | 'other' | 'staging';
  /** Bound as a storage buffer (then maxStorageBufferBindingSize applies). */
  storage: boolean;
  /** Grows with the context length (what lowering contextLength shrinks). */
  perContext: boolean;
}

export interface MemoryPlan {
  contextLength: number;
  kvF16: boolean;
  kvType: KvType;
  weights: number;
  kv: number;
  activations: number;
  /** Rope tables, uniforms. */
  other: number;
  /** Readback buffers. */
  staging: number;
  total: number;
  buffers: PlannedBuffer[];
}

/** The engine's rounding (createBuffer): whole u32 words, at least one. */
const rounded = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);

/**
 * Every buffer LlamaModel.load allocates for `t` at `o.contextLength`; an upper
 * bound where a kernel's choice is made on the adapter (split attention, decode
 * chains). Throws GpuError/GgufError for a tensor type or row the GPU path
 * cannot take, so that too fails before the device is opened.
 */
export function planMemory(c: Config, t: ModelTensors, o: MemoryPlanOptions): MemoryPlan {
  const ctx = o.contextLength;
  const B = Math.max(1, Math.min(o.maxBatch ?? 64, ctx));
  const kvType: KvType = o.kvType ?? ((o.kvF16 ?? true) ? 'f16' : 'f32');
  const kvF16 = kvType === 'f16';
  const maxBinding = o.maxBindingBytes ?? Number.POSITIVE_INFINITY;
  const qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
  const plan = t.plan, fam = plan.family;
  const buffers: PlannedBuffer[] = [];
  const add = (category: PlannedBuffer['category'], label: string, bytes: number, o2: { count?: number; storage?: boolean; perContext?: boolean } = {}) => {
    buffers.push({ label, bytes: rounded(bytes), count: o2.count ?? 1, category, storage: o2.storage ?? true, perContext: o2.perContext ?? false });
  };

  // Matrices: runs of one type and row length upload as one weight (q|k|v, gate|up), in parts that each fit a binding.
  let parts = 0;
  const matrices = (ts: TensorInfo[]) => {
    for (let i = 0; i < ts.length; ) {
      let j = i + 1;
      while (j < ts.length && ts[j].type.id === ts[i].type.id && ts[j].dims[0] === ts[i].dims[0]) j++;
      const first = ts[i], fmt = gpuFormat(first.type, first.name);
      const { cols } = tensorShape(first);
      if (cols % fmt.colsMultiple !== 0) throw new GgufError(`tensor ${printable(first.name)} has rows of ${cols} elements, not a multiple of ${fmt.colsMultiple} as ${first.type.name} requires: the file is corrupt`);
      const rows = ts.slice(i, j).reduce((s, x) => s + tensorShape(x).rows, 0);
      const rb = rowBytes(first.type, cols);
      // Rows per part as uploadTensor splits them (even, so chunks stay u32-aligned).
      let perPart = Number.isFinite(maxBinding) ? Math.floor((maxBinding - 16) / rb) : rows;
      if (perPart >= 2) perPart -= perPart % 2;
      if (perPart < 1) throw new GpuError(`tensor ${printable(first.name)}: one row (${fmtBytes(rb)}) exceeds this GPU's storage binding limit (${fmtBytes(maxBinding)}): use a smaller model`);
      const n = Math.ceil(rows / perPart);
      let bytes = 0;
      for (let p = 0; p < n; p++) bytes += rounded(partBytes(first.type, Math.min(perPart, rows - p * perPart), cols));
      add('weights', j - i > 1 ? `${first.name}+${j - i - 1}` : first.name, bytes);
      parts += n;
      i = j;
    }
  };
  // MoE expert tensors [experts, rows, cols] upload in parts of whole experts (uploadTensor); each part has an Info and two MoE uniforms.
  const experts = (x: TensorInfo) => {
    const [cols, rows, E] = x.dims, fmt = gpuFormat(x.type, x.name);
    if (cols % fmt.colsMultiple !== 0) throw new GgufError(`tensor ${printable(x.name)} has rows of ${cols} elements, not a multiple of ${fmt.colsMultiple} as ${x.type.name} requires: the file is corrupt`);
    const eb = rows * rowBytes(x.type, cols);
    const per = Number.isFinite(maxBinding) ? Math.floor((maxBinding - 16) / eb) : E;
    if (per < 1) throw new GpuError(`tensor ${printable(x.name)}: one expert (${fmtBytes(eb)}) exceeds this GPU's storage binding limit (${fmtBytes(maxBinding)}): use a smaller model`);
    let bytes = 0;
    for (let e0 = 0; e0 < E; e0 += per) bytes += rounded(partBytes(x.type, Math.min(per, E - e0) * rows, cols));
    add('weights', x.name, bytes);
    parts += Math.ceil(E / per);
  };
  // Vectors (norms, biases) are decoded on the CPU and uploaded as f32.
  const vector = (x: TensorInfo | undefined) => {
    if (!x) return;
    if (!DECODERS.has(x.type.id)) throw new GgufError(`tensor ${printable(x.name)} is ${x.type.name}, which qllm cannot read: re-convert the model with F32 norms`);
    add('weights', x.name, x.nElements * 4);
  };
  matrices([t.tokenEmbd]);
  if (t.output) matrices([t.output]);
  vector(t.outputNorm);
  if (t.ropeFactors && !DECODERS.has(t.ropeFactors.type.id)) throw new GgufError(`tensor ${printable(t.ropeFactors.name)} is ${t.ropeFactors.type.name}, which qllm cannot read: re-convert the model`);
  for (const L of t.layers) {
    matrices([L.q, L.k, L.v]);
    if (L.gateInp) for (const x of [L.gateInp, L.gate, L.up, L.down]) (x === L.gateInp ? matrices([x]) : experts(x));
    else matrices([L.gate, L.up]);
    matrices([L.o]);
    if (!L.gateInp) matrices([L.down]);
    // Qwen2-MoE's shared expert: gate|up as one weight where they share a type, down, and its gate vector (moe-layer.ts).
    if (L.gateShexp && L.upShexp && L.downShexp) {
      matrices([L.gateShexp, L.upShexp]);
      matrices([L.downShexp]);
    }
    vector(L.gateInpShexp);
    for (const v of [L.attnNorm, L.ffnNorm, L.qBias, L.kBias, L.vBias, L.qNorm, L.kNorm, L.attnPostNorm, L.ffnPostNorm]) vector(v);
    for (const v of [L.sinks, L.oBias, L.gateInpBias, L.gateExpsBias, L.upExpsBias, L.downExpsBias]) vector(v); // gpt-oss
  }

  // KV caches and rope tables grow with the context; one cache buffer a layer holds every sequence.
  const nL = c.nLayers, S = o.sequences ?? 1;
  add('kv', 'k cache', kvBufferBytes(kvType, S * ctx, kvDim), { count: nL, perContext: true });
  add('kv', 'v cache', kvBufferBytes(kvType, S * ctx, kvDim), { count: nL, perContext: true });
  add('other', 'rope table', ctx * c.ropeDim * 4, { count: plan.ropes.length, perContext: true });

  // Activations (llama.ts build(): q|k|v and gate|up as 256-aligned regions of one buffer each).
  const kOff = align256(B * qDim * 4), vOff = kOff + align256(B * kvDim * 4), upOff = align256(B * c.ffnDim * 4);
  const direct = !fam.postNorm && plan.residualScale === 1;
  add('activations', 'ids', B * 4);
  add('activations', 'x', B * c.dim * 4, { count: direct ? 2 : 3 }); // x, xn (and branch)
  add('activations', 'qkv', vOff + B * kvDim * 4);
  add('activations', 'att', B * qDim * 4);
  add('activations', 'gate|up', upOff + B * c.ffnDim * 4);
  add('activations', 'lastX', c.dim * 4);
  add('activations', 'logits', B * t.vocab * 4);
  add('activations', 'best', 4);
  if (plan.moe) {
    const m = moeActivations(plan.moe, B, c.dim);
    add('activations', 'moe logits', m.logits);
    add('activations', 'moe routes', m.routes);
    add('activations', 'moe gate|up', m.gu);
    add('activations', 'moe pairs', m.pairs);
    if (plan.moe.sharedFf) {
      add('activations', 'moe shared gate|up', m.sharedGu);
      add('activations', 'moe shared out', m.sharedOut);
    }
  }
  // Split attention: per layer, partials of each (token, head, chunk).
  const split = o.splitAttention ?? true; // attention with sinks splits too (attention-sinks.ts)
  const chunk = split ? (o.attentionChunk ?? Math.max(32, Math.ceil(ctx / 32))) : ctx;
  add('activations', 'attention partials', split ? B * c.nHeads * Math.ceil(ctx / chunk) * (c.headDim / 2 + 1) * 8 : 16, { count: nL, perContext: split });
  // Decode chains (CPU kernels; counted whether or not the adapter gets them): one token's activations and phase counters.
  const a64 = (n: number) => Math.ceil(n / 64) * 64;
  add('activations', 'decode chain activations', (a64(c.dim) + 2 * a64(qDim) + 2 * a64(kvDim) + a64(c.ffnDim) + c.ffnDim) * 4);
  add('activations', 'decode chain counters', Math.max(16, nL * 2 * 5 * 4));
  add('staging', 'read logits', B * t.vocab * 4, { storage: false });
  add('staging', 'read best', 4, { count: 2, storage: false });
  // Batched steps (llama-batch.ts): the per-token table, the head's input rows and their
  // argmax, the readback of ids and logits rows, per layer the unsplit attention's small
  // buffers (attention.wgsl), and an Info per weight part for the narrow-tile products.
  if (S > 1) {
    add('activations', 'batch seqs', B * 8);
    add('activations', 'batch head input', S * c.dim * 4);
    add('activations', 'batch best', S * 4);
    add('activations', 'batch attention partials', 16, { count: nL });
    add('other', 'batch attention dims', 16, { count: nL, storage: false });
    add('other', 'batch params', 16, { storage: false });
    add('other', 'batch tile uniforms', 64 * parts, { storage: false });
    add('activations', 'batch 8-bit x', modelQ8xBytes(c, S));
    add('staging', 'read batch', S * 4 + S * t.vocab * 4, { storage: false });
  }
  // Uniforms: params, one 64-byte Info per weight part and product (matvec and matmul share it), attention dims.
  add('other', 'uniforms', 64 * (4 + 2 * parts + 4 * nL), { storage: false });

  const sum = (cat: PlannedBuffer['category']) => buffers.filter((b) => b.category === cat).reduce((s, b) => s + b.bytes * b.count, 0);
  const p = { contextLength: ctx, kvF16, kvType, weights: sum('weights'), kv: sum('kv'), activations: sum('activations'), other: sum('other'), staging: sum('staging'), buffers };
  return { ...p, total: p.weights + p.kv + p.activations + p.other + p.staging };
}

/** LlamaModel.load's check: the plan for this engine's KV type, kernels and limits, against what is left of its budget. */
export function checkEnginePlan(e: Engine, c: Config, t: ModelTensors, o: { contextLength: number; maxBatch?: number; attentionChunk?: number; kvType?: KvType; sequences?: number }): void {
  const at = (n: number) => planMemory(c, t, {
    sequences: o.sequences,
    contextLength: n, kvF16: e.f16, kvType: o.kvType, maxBatch: o.maxBatch, splitAttention: o.attentionChunk === undefined ? !e.cpuTuning : o.attentionChunk > 0,
    attentionChunk: o.attentionChunk || undefined, maxBindingBytes: Math.min(e.limits.maxStorageBufferBindingSize, e.limits.maxBufferSize),
  });
  checkMemoryPlan(at(o.contextLength), e.limits, e.memoryBudget - e.memory().total, at);
}

/** The adapter limits a plan must fit (GPUSupportedLimits' names). */
export interface BufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** The largest context length ≤ `below` whose plan passes `fits`, or 0 when even 2 does not. */
function largestContext(fits: (ctx: number) => boolean, below: number): number {
  if (!fits(2)) return 0;
  let lo = 2, hi = below;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Refuses a plan that cannot load, in one line naming what to lower:
 * GpuError when a buffer exceeds the adapter's limits, UsageError when the
 * total exceeds `budget` (bytes; Infinity for none). `replan` recomputes the
 * plan at another context length, to say which one would fit.
 */
export function checkMemoryPlan(p: MemoryPlan, limits: BufferLimits | undefined, budget: number, replan: (contextLength: number) => MemoryPlan): void {
  // Weights are split into parts that fit (planMemory's maxBindingBytes); every other buffer is one allocation.
  const tooBig = (q: MemoryPlan) =>
    limits ? q.buffers.find((b) => b.category !== 'weights' && (b.bytes > limits.maxBufferSize || (b.storage && b.bytes > limits.maxStorageBufferBindingSize))) : undefined;
  const big = tooBig(p);
  if (big && limits) {
    const binding = big.storage && big.bytes > limits.maxStorageBufferBindingSize;
    const limit = binding ? `maxStorageBufferBindingSize of ${fmtBytes(limits.maxStorageBufferBindingSize)}` : `maxBufferSize of ${fmtBytes(limits.maxBufferSize)}`;
    const what = `the ${big.label}${big.count > 1 ? ` (one of ${big.count})` : ''} needs ${fmtBytes(big.bytes)} at contextLength ${p.contextLength}, over this GPU's ${limit}`;
    const fit = big.perContext ? largestContext((ctx) => !tooBig(replan(ctx)), p.contextLength) : 0;
    throw new GpuError(fit ? `${what}: lower contextLength (-c) to ${fit} or less` : `${what}: this model is too large for this GPU; use a smaller model`);
  }
  if (p.total > budget) {
    const parts = `weights ${fmtBytes(p.weights)}, KV cache ${fmtBytes(p.kv)}, activations ${fmtBytes(p.activations)}, other ${fmtBytes(p.other + p.staging)}`;
    const what = `loading needs ${fmtBytes(p.total)} of GPU memory at contextLength ${p.contextLength} (${parts}), over the memoryBudget of ${fmtBytes(budget)}`;
    const fit = largestContext((ctx) => replan(ctx).total <= budget, p.contextLength);
    throw new UsageError(fit ? `${what}: lower contextLength (-c) to ${fit} or less, or raise memoryBudget (--memory-budget)` : `${what}: even the smallest context does not fit; raise memoryBudget (--memory-budget) or use a smaller model`);
  }
}

/**
 * The memory plan of a model file at `contextLength` (default: what loadModel
 * uses, min(model, 2048)), for `qllm info` and callers sizing a budget. Throws
 * GgufError where the file cannot load at all (checkModel).
 */
export function estimateMemory(file: GgufFile, contextLength?: number, opts: Omit<MemoryPlanOptions, 'contextLength'> = {}): MemoryPlan {
  const c = readConfig(file);
  const ctx = contextLength ?? Math.min(c.contextLength || 2048, 2048);
  return planMemory(c, checkModel(file, c, ctx), { ...opts, contextLength: ctx });
}

/** memoryBudget as the caller gave it: undefined (no limit) or a positive finite number of bytes. */
export function validateBudget(budget: number | undefined): number {
  if (budget === undefined) return Number.POSITIVE_INFINITY;
  if (typeof budget !== 'number' || !Number.isFinite(budget) || budget <= 0) {
    throw new UsageError(`memoryBudget ${String(budget)} is not a positive number of bytes: pass e.g. 2147483648 (2 GiB), or leave it out for no limit`);
  }
  return budget;
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A size as people type it: bytes, or a number with K, M, G or T (binary; 'B', 'iB' allowed): '2G', '1.5GiB', '512m'. */
export function parseByteSize(text: string, flag = 'memoryBudget'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]) : Number.NaN;
  if (!(bytes > 0 && Number.isFinite(bytes))) throw new UsageError(`${flag} ${printable(text)} is not a size: give bytes or a number with K, M, G or T, e.g. ${flag} 2G`);
  return bytes;
}
