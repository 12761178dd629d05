// llama.cpp as a test oracle, through npm node-llama-cpp (pinned 3.21.1: llama.cpp tag
// v0.4.0, the same source as the shared vocab cases). Only its prebuilt CPU binary
// (@node-llama-cpp/linux-x64) is used: nothing here may download or compile, so the
// package is loaded with build: 'never' and NODE_LLAMA_CPP_SKIP_DOWNLOAD set before its
// first import (its config module reads the environment once, at load).
//
// Logits: node-llama-cpp hands back only probabilities, but with temperature 0 its
// sampler chain is bare greedy, so they are softmax(raw logits) over the whole
// vocabulary, computed by the addon in f32. ln(p_a) - ln(p_b) = logit_a - logit_b is then
// exact up to f32 rounding (~1e-6), which is what greedy comparisons need: gaps, not
// absolute logits. Step tops are therefore logits relative to the step's best (0, then
// negative).
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';

export type KvType = 'f16' | 'f32' | 'q8_0' | 'q4_0';

/** node-llama-cpp's GgmlType names for experimentalKvCache{Key,Value}Type. */
const KV_GGML = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' } as const;

export interface GreedyOptions {
  /** KV cache element type (keys and values). Default 'f32'. A quantized V cache needs flash attention (llama.cpp refuses it without), which is then the default. */
  kvType?: KvType;
  /** Context cells. Default 512; prompt + steps must fit (no silent context shift). */
  contextSize?: number;
  /**
   * Default false. On the CPU, llama.cpp's flash-attention path computes attention in
   * f16 whatever the KV type (F32 KV with it on matches F16 KV to the bit on stories260K),
   * so an F32 KV comparison needs it off. llama.cpp's own default ('auto') turns it on.
   * Default true for q8_0/q4_0 (required there), else false.
   */
  flashAttention?: boolean;
  /** Evaluation threads. Default 1: CI has 2 cores and vitest runs 2 files at once. */
  threads?: number;
  /** Candidates kept per step. Default 10. */
  topK?: number;
}

export interface GreedyStep {
  /** The greedy (argmax) id. */
  id: number;
  /** The topK candidates, best first: [id, logit - best logit] (so the first is [id, 0]). */
  top: [number, number][];
}

export interface GreedyResult {
  /** Generated ids (the prompt excluded); ends early after an end-of-generation id. */
  ids: number[];
  steps: GreedyStep[];
}

export interface TokenizeOptions {
  /** Add BOS/EOS as the vocabulary's add_bos/add_eos say (llama_tokenize's add_special). Default false. */
  addSpecial?: boolean;
  /** Match special-token text (`<s>`, `<|im_start|>`) to its id (parse_special). Default false, as llama_tokenize. */
  parseSpecial?: boolean;
}

// The package's own option names: getLlama({ gpu, build, skipDownload, maxThreads, ... }).
const LLAMA_OPTIONS = { gpu: false, build: 'never', skipDownload: true, maxThreads: 2, progressLogs: false } as const;

let llamaPromise: Promise<Llama> | undefined;
let unavailable: string | undefined;
const vocabModels = new Map<string, Promise<LlamaModel>>();
// llama.cpp's log, kept quiet (a vocab-only load logs a harmless "missing tensor" from
// node-llama-cpp's memory estimate) and attached to errors instead.
const recentLog: string[] = [];

function getOracleLlama(): Promise<Llama> {
  llamaPromise ??= (async () => {
    process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return getLlama({
      ...LLAMA_OPTIONS,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        recentLog.push(`${level}: ${message.trimEnd()}`);
        if (recentLog.length > 40) recentLog.shift();
      },
    });
  })();
  return llamaPromise;
}

/** Whether llama.cpp loads here, and why not (once per process; the instance is kept). */
export async function oracleStatus(): Promise<{ available: boolean; reason?: string }> {
  if (unavailable !== undefined) return { available: false, reason: unavailable };
  try {
    await getOracleLlama();
    return { available: true };
  } catch (e) {
    llamaPromise = undefined;
    const err = e as Error;
    const what = err.message && err.message !== err.name ? `${err.name}: ${err.message.split('\n')[0]}` : String(err.name ?? e);
    unavailable = `llama.cpp oracle (node-llama-cpp ${process.platform}-${process.arch} prebuilt CPU binary) does not load here: ${what}`;
    return { available: false, reason: unavailable };
  }
}

export async function oracleAvailable(): Promise<boolean> {
  return (await oracleStatus()).available;
}

/**
 * For describe.skipIf: true when the oracle is absent. Prints why, and throws instead when
 * QLLM_REQUIRE_ORACLE=1 (CI sets it, so a broken install fails rather than skips).
 */
export async function skipWithoutOracle(what: string): Promise<boolean> {
  const s = await oracleStatus();
  if (s.available) return false;
  if (process.env.QLLM_REQUIRE_ORACLE === '1') throw new Error(`${what}: QLLM_REQUIRE_ORACLE=1 but ${s.reason}`);
  console.warn(`[qllm tests] ${what} skipped: ${s.reason}`);
  return true;
}

function withLog(e: unknown): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  if (recentLog.length) err.message += `\nllama.cpp log:\n  ${recentLog.join('\n  ')}`;
  return err;
}

/** Greedy decode of `promptIds` (BOS included if wanted: nothing is added) for `steps` tokens. */
export async function oracleGreedy(modelPath: string, promptIds: number[], steps: number, opts: GreedyOptions = {}): Promise<GreedyResult> {
  const contextSize = opts.contextSize ?? 512;
  if (promptIds.length === 0) throw new Error('oracleGreedy: the prompt is empty');
  if (promptIds.length + steps > contextSize) {
    throw new Error(
      `oracleGreedy: prompt ${promptIds.length} + ${steps} steps exceeds contextSize ${contextSize} (llama.cpp would shift the context)`,
    );
  }
  const kvType = opts.kvType ?? 'f32';
  const kv = KV_GGML[kvType];
  const quantKv = kvType === 'q8_0' || kvType === 'q4_0';
  const topK = opts.topK ?? 10;
  return withModel(modelPath, async (model) => {
    const ctx = await model.createContext({
      contextSize,
      batchSize: Math.min(512, contextSize),
      sequences: 1,
      threads: opts.threads ?? 1,
      flashAttention: opts.flashAttention ?? quantKv,
      experimentalKvCacheKeyType: kv,
      experimentalKvCacheValueType: kv,
    });
    try {
      const result: GreedyResult = { ids: [], steps: [] };
      if (steps <= 0) return result;
      const seq = ctx.getSequence();
      // temperature 0 = greedy sampler only (no top-k/top-p), so probabilities cover the whole vocabulary.
      const gen = seq.evaluateWithMetadata(promptIds as Token[], { probabilities: true }, { temperature: 0, yieldEogToken: true });
      for await (const out of gen) {
        result.ids.push(out.token);
        result.steps.push({ id: out.token, top: topRelative(out.probabilities, topK) });
        if (result.ids.length >= steps || model.isEogToken(out.token)) break;
      }
      return result;
    } finally {
      await ctx.dispose();
    }
  });
}

/**
 * llama.cpp's embedding of `ids` (BOS included; node-llama-cpp adds a missing
 * BOS, and EOS where the vocabulary asks for it): the pooled hidden state after
 * the output norm, or the last token's where the file has no pooling type. Not normalised.
 */
export async function oracleEmbed(
  modelPath: string,
  ids: number[],
  opts: { contextSize?: number; threads?: number } = {},
): Promise<number[]> {
  const contextSize = opts.contextSize ?? 256;
  return withModel(modelPath, async (model) => {
    // One batch for the whole input: pooling needs every token in one ubatch.
    const ctx = await model.createEmbeddingContext({ contextSize, batchSize: contextSize, threads: opts.threads ?? 1 });
    try {
      return [...(await ctx.getEmbeddingFor(ids as Token[])).vector];
    } finally {
      await ctx.dispose();
    }
  });
}

/** Runs `fn` on the model loaded on the CPU, disposing it after; errors carry llama.cpp's recent log. */
async function withModel<T>(modelPath: string, fn: (model: LlamaModel) => Promise<T>): Promise<T> {
  const llama = await getOracleLlama();
  let model: LlamaModel | undefined;
  try {
    model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    return await fn(model);
  } catch (e) {
    throw withLog(e);
  } finally {
    await model?.dispose();
  }
}

/** [id, ln p - ln p_best] for the k most probable ids (the map comes sorted, best first). */
function topRelative(probs: Map<number, number>, k: number): [number, number][] {
  const out: [number, number][] = [];
  let best = Number.NaN;
  for (const [id, p] of probs) {
    if (out.length === 0) best = Math.log(p);
    out.push([id, Math.log(p) - best]);
    if (out.length >= k) break;
  }
  return out;
}

function vocabModel(modelPath: string): Promise<LlamaModel> {
  let m = vocabModels.get(modelPath);
  if (!m) {
    m = getOracleLlama().then((llama) => llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 }));
    vocabModels.set(modelPath, m);
    m.catch(() => vocabModels.delete(modelPath));
  }
  return m;
}

/**
 * llama.cpp's tokenization of `text` (the vocabulary is loaded once per path and kept
 * until disposeOracle). node-llama-cpp always calls llama_tokenize with add_special
 * false, so addSpecial is applied here the way llama.cpp does it: BOS first when the
 * vocabulary's add_bos is set, EOS last when add_eos is.
 */
export async function oracleTokenize(modelPath: string, text: string, opts: TokenizeOptions = {}): Promise<number[]> {
  let model: LlamaModel;
  try {
    model = await vocabModel(modelPath);
  } catch (e) {
    throw withLog(e);
  }
  const ids = text === '' ? [] : model.tokenize(text, opts.parseSpecial ?? false);
  if (opts.addSpecial) {
    const t = model.tokens;
    if (t.shouldPrependBosToken && t.bos !== null) ids.unshift(t.bos);
    if (t.shouldAppendEosToken && t.eos !== null) ids.push(t.eos);
  }
  return ids;
}

/** Disposes the cached vocabularies and the llama instance (afterAll). */
export async function disposeOracle(): Promise<void> {
  const models = [...vocabModels.values()];
  vocabModels.clear();
  for (const m of models) await m.then((x) => x.dispose()).catch(() => {});
  const l = llamaPromise;
  llamaPromise = undefined;
  if (l) await l.then((x) => x.dispose()).catch(() => {});
}

export interface Agreement {
  /** Identical, or the first divergence is a near tie in llama.cpp's own logits. */
  ok: boolean;
  /** First index where the ids differ (or the shorter length, if one is a prefix of the other); -1 if identical. */
  divergeAt: number;
  /** llama.cpp's logit(its id) - logit(our id) at divergeAt; Infinity if ours is outside its top; NaN if no divergence or a length mismatch. */
  gap: number;
  /** One line for a failure message. */
  why: string;
}

/**
 * Judges our greedy ids against llama.cpp's. Past the first divergence the two decode
 * different texts, so only that first step is judged: it is acceptable when llama.cpp
 * itself nearly tied our id with its own (gap <= tolerance), where f32 rounding
 * differences between implementations can legitimately flip the argmax.
 */
export function greedyAgreement(ours: readonly number[], theirs: GreedyResult, tolerance = 0.3): Agreement {
  const n = Math.min(ours.length, theirs.ids.length);
  for (let i = 0; i < n; i++) {
    if (ours[i] === theirs.ids[i]) continue;
    const step = theirs.steps[i];
    const mine = step.top.find(([id]) => id === ours[i]);
    const theirsRel = step.top.find(([id]) => id === step.id)?.[1] ?? 0;
    const gap = mine ? theirsRel - mine[1] : Number.POSITIVE_INFINITY;
    const ok = gap <= tolerance;
    return {
      ok,
      divergeAt: i,
      gap,
      why: `step ${i}: ours ${ours[i]}, llama.cpp ${theirs.ids[i]}, llama.cpp's logit gap ${gap.toFixed(4)} ${ok ? '<=' : '>'} ${tolerance}`,
    };
  }
  if (ours.length !== theirs.ids.length) {
    return {
      ok: false,
      divergeAt: n,
      gap: Number.NaN,
      why: `same first ${n} ids, but lengths differ: ours ${ours.length}, llama.cpp ${theirs.ids.length}`,
    };
  }
  return { ok: true, divergeAt: -1, gap: Number.NaN, why: `identical (${n} ids)` };
}
