// The figures behind `qllm info`: shape, tokenizer, parameter count, bytes by type,
// the memory-savings table (weights as stored vs F16/F32, KV cache at full context),
// and what running it takes at a given context (weights + KV cache + activations).
import { readConfig, type Config } from './config.ts';
import { isQllmError, printable } from './errors.ts';
import type { GgufFile } from './gguf/types.ts';
import { describePlan, type MoePlan, planModel } from './models/family.ts';
import { checkKvType, type KvType, kvCacheBytes as kvTypeBytes } from './models/kv-cache.ts';
import { estimateMemory } from './models/memory-plan.ts';

export interface ModelReport {
  file: string;
  file_bytes: number;
  gguf_version: number;
  architecture: string;
  name: string;
  /** Whether qllm runs this family, and its quirks as the file sets them (rope style, windows, caps, scales); or why not. */
  family: { supported: boolean; quirks: string | null; error: string | null };
  hyperparameters: {
    context_length: number; embedding_length: number; block_count: number; feed_forward_length: number;
    head_count: number; head_count_kv: number; head_dim: number; rope_dim: number; rope_freq_base: number; rms_eps: number;
  };
  tokenizer: { model: string; vocab_size: number; bos_id: number | null; eos_id: number | null; chat_template: boolean } | null;
  vocab_size: number;
  parameters: number;
  /**
   * Parameters one token's forward pass uses: all but the experts the router
   * does not choose (MoE: each expert tensor counts k/E of its parameters); equal
   * to `parameters` for a dense model. active_weight_bytes: the same share of the stored bytes.
   */
  active_parameters: number;
  active_weight_bytes: number;
  /** MoE: experts per layer and per token; null for a dense model. */
  experts: { count: number; used: number } | null;
  tensor_count: number;
  /** Tensor count and bytes per ggml type name. */
  tensor_types: Record<string, { count: number; bytes: number; parameters: number }>;
  bits_per_weight: number;
  memory: {
    weights_stored_bytes: number;
    weights_f16_bytes: number;
    weights_f32_bytes: number;
    /** stored / f16: how much of the f16 footprint the file needs. */
    ratio_vs_f16: number;
    kv_cache_f16_bytes: number;
    kv_cache_f32_bytes: number;
    /** The block types (--kv-type); null where a token's K/V row is not whole blocks of 32. */
    kv_cache_q8_0_bytes: number | null;
    kv_cache_q4_0_bytes: number | null;
    /** GPU memory `qllm run -c <context_length>` takes; null for a file without weights. */
    run: RunMemory | null;
  };
}

/**
 * GPU memory a run at `context_length` takes, from the loader's own memory plan
 * (src/models/memory-plan.ts; an upper bound where a kernel choice depends on
 * the adapter): the weights as uploaded, the KV cache in f16 (qllm's type on
 * adapters with shader-f16; f32 otherwise, the *_f32_kv figures; or the
 * type asked for, kv_type), and activations with the rope tables, uniforms
 * and readback buffers.
 */
export interface RunMemory {
  context_length: number;
  weights_bytes: number;
  /** The KV cache type kv_bytes and total_bytes are for: f16 unless one was asked for (--kv-type). */
  kv_type: KvType;
  kv_bytes: number;
  /** The KV cache in f16, for comparison. */
  kv_f16_bytes: number;
  /** Activations, rope tables, uniforms and readback buffers. */
  activations_bytes: number;
  total_bytes: number;
  kv_f32_bytes: number;
  total_f32_kv_bytes: number;
}

/** Bytes of a K+V cache of `ctx` tokens at `bytesPerElem` per element. */
export function kvCacheBytes(cfg: Config, ctx: number, bytesPerElem: number): number {
  return 2 * cfg.nLayers * ctx * cfg.nKvHeads * cfg.headDim * bytesPerElem;
}

/** The KV bytes as the run stats print them, beside f16's for another type: "kv 1.06 MiB (q8_0; f16 would need 2.00 MiB)". */
export function formatKvBytes(bytes: number, type: string | undefined, f16Bytes: number | undefined): string {
  return type && type !== 'f16' && f16Bytes ? `kv ${formatBytes(bytes)} (${type}; f16 would need ${formatBytes(f16Bytes)})` : `kv ${formatBytes(bytes)}`;
}

/**
 * The one wording for weights beside their f16 size, used by `qllm info`, run's
 * and chat's stats, bench and the chat page:
 *   "weights: 175.00 KiB, f16 would need 571.88 KiB (3.27x smaller)"
 *   "weights: 1.12 MiB, f16 would need 571.88 KiB (2.00x larger than f16; quantize it with qllm quantize)"
 */
export function formatWeightSavings(weightBytes: number, f16Bytes: number): string {
  const head = `weights: ${formatBytes(weightBytes)}, f16 would need ${formatBytes(f16Bytes)}`;
  if (!(weightBytes > 0 && f16Bytes > 0)) return head;
  const smaller = (f16Bytes / weightBytes).toFixed(2);
  const larger = (weightBytes / f16Bytes).toFixed(2);
  if (smaller === '1.00' || larger === '1.00') return `${head} (the same as f16)`;
  return weightBytes < f16Bytes ? `${head} (${smaller}x smaller)` : `${head} (${larger}x larger than f16; quantize it with qllm quantize)`;
}

/** contextLength: the context the run figures are for; default what `qllm run` uses, min(model, 2048). kvType: their KV cache type (default f16). */
export function describeModel(file: GgufFile, opts: { contextLength?: number; kvType?: KvType } = {}): ModelReport {
  const cfg = readConfig(file);
  const types: ModelReport['tensor_types'] = {};
  let params = 0;
  let stored = 0;
  for (const t of file.tensors) {
    types[t.type.name] ??= { count: 0, bytes: 0, parameters: 0 };
    const e = types[t.type.name];
    e.count++;
    e.bytes += t.nBytes;
    e.parameters += t.nElements;
    params += t.nElements;
    stored += t.nBytes;
  }
  const tk = cfg.tokenizer;
  let moe: MoePlan | undefined;
  function family(): ModelReport['family'] {
    if (!cfg.nLayers) return { supported: false, quirks: null, error: 'no model weights (a vocabulary-only file)' };
    try {
      const plan = planModel(cfg, cfg.contextLength, (n) => !!file.tensor(n), file.path);
      moe = plan.moe;
      return { supported: true, quirks: describePlan(plan), error: null };
    } catch (e) {
      if (isQllmError(e)) return { supported: false, quirks: null, error: e.message };
      throw e;
    }
  }
  const fam = family();
  // A token reads k of E experts of each expert tensor (3-D, experts last; gpt-oss's per-expert biases are 2-D, experts last).
  const share = (t: (typeof file.tensors)[number]) => (moe && /_exps\.(weight|bias)$/.test(t.name) && t.dims.at(-1) === moe.experts ? moe.used / moe.experts : 1);
  const active = file.tensors.reduce((a, t) => ({ n: a.n + t.nElements * share(t), b: a.b + t.nBytes * share(t) }), { n: 0, b: 0 });
  return {
    file: file.path,
    file_bytes: file.fileSize,
    gguf_version: file.version,
    // Strings from the file, escaped: they are printed (and may hold ESC sequences or newlines).
    architecture: printable(cfg.arch),
    name: printable(cfg.name),
    family: fam,
    hyperparameters: {
      context_length: cfg.contextLength, embedding_length: cfg.dim, block_count: cfg.nLayers, feed_forward_length: cfg.ffnDim,
      head_count: cfg.nHeads, head_count_kv: cfg.nKvHeads, head_dim: cfg.headDim, rope_dim: cfg.ropeDim,
      rope_freq_base: cfg.ropeTheta, rms_eps: cfg.rmsEps,
    },
    tokenizer: tk ? { model: printable(tk.model), vocab_size: tk.tokens.length, bos_id: tk.bosId ?? null, eos_id: tk.eosId ?? null, chat_template: tk.chatTemplate !== undefined } : null,
    vocab_size: cfg.vocabSize,
    parameters: params,
    active_parameters: Math.round(active.n),
    active_weight_bytes: Math.round(active.b),
    experts: moe ? { count: moe.experts, used: moe.used } : null,
    tensor_count: file.tensors.length,
    tensor_types: types,
    bits_per_weight: params ? (stored * 8) / params : 0,
    memory: {
      weights_stored_bytes: stored,
      weights_f16_bytes: params * 2,
      weights_f32_bytes: params * 4,
      ratio_vs_f16: params ? stored / (params * 2) : 0,
      kv_cache_f16_bytes: kvCacheBytes(cfg, cfg.contextLength, 2),
      kv_cache_f32_bytes: kvCacheBytes(cfg, cfg.contextLength, 4),
      kv_cache_q8_0_bytes: blockKvBytes(cfg, 'q8_0'),
      kv_cache_q4_0_bytes: blockKvBytes(cfg, 'q4_0'),
      run: runMemory(file, cfg, opts.contextLength, opts.kvType),
    },
  };
}

/** A block type's K+V bytes at the model's context, or null where its blocks do not tile a K/V row. */
function blockKvBytes(cfg: Config, t: KvType): number | null {
  if (!cfg.nLayers) return 0;
  try {
    checkKvType(t, cfg);
  } catch (e) {
    if (isQllmError(e)) return null;
    throw e;
  }
  return kvTypeBytes(t, cfg, cfg.contextLength);
}

/** RunMemory from the memory plan; null where the file cannot load (no weights, an unsupported family: `family` says why). */
function runMemory(file: GgufFile, cfg: Config, contextLength: number | undefined, kvType: KvType = 'f16'): RunMemory | null {
  if (!cfg.nLayers) return null;
  try {
    checkKvType(kvType, cfg);
    const run = estimateMemory(file, contextLength, { kvType });
    const f16 = estimateMemory(file, contextLength, { kvF16: true });
    const f32 = estimateMemory(file, contextLength, { kvF16: false });
    const activations = run.activations + run.other + run.staging;
    return {
      context_length: run.contextLength, weights_bytes: run.weights, kv_type: kvType, kv_bytes: run.kv, kv_f16_bytes: f16.kv, activations_bytes: activations,
      total_bytes: run.total, kv_f32_bytes: f32.kv, total_f32_kv_bytes: f32.total,
    };
  } catch (e) {
    if (isQllmError(e)) return null;
    throw e;
  }
}

/** 1536 → "1.50 KiB"; binary units, as memory is counted. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(2)} ${units[i]}`;
}

/** 1_100_048_384 → "1.10B". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
