// The model's own kernels (rmsnorm, rope + KV store, attention, swiglu/geglu,
// argmax, and the small ops of other families: bias add, group RMSNorm,
// normed/scaled residual add, logit scale/softcap): each factory builds its
// pipeline and bind group once, at load time, and returns an
// `encode(pass, nTokens)` that only records a dispatch. Every kernel reads the
// per-step uniform `params` (u32 nTokens at byte 0, u32 pos at byte 4, and
// for the kernels that touch the KV cache u32 base at byte 8: the first cache
// slot of the step's sequence). Those kernels also come in a batched-decode
// form (`seqs`): each token is its own sequence's next one, with its position
// and base read per token (seq_table.wgsl).
import { GpuError } from '../errors.ts';
import type { Engine } from '../gpu/engine.ts';
import { withSinks } from './attention-sinks.ts';
import { attentionKvSource, isBlockKv, type KvType, kvDBase } from './kv-cache.ts';

export interface Kernel {
  readonly label: string;
  /** pos: the first token's position (only attention needs it, for its chunk count). */
  encode(pass: GPUComputePassEncoder, nTokens: number, pos?: number): void;
  /** Buffers the kernel allocated itself (the owner destroys them). */
  readonly buffers?: GPUBuffer[];
}

/** A whole buffer, or a range of one (q, k, v are regions of one activation buffer). */
export type Buf = GPUBuffer | GPUBufferBinding;
const bind = (b: Buf): GPUBufferBinding => ('buffer' in b ? b : { buffer: b });

/** Bytes of the per-step uniform: nTokens, pos, base (first KV slot of the sequence), pad. */
export const PARAMS_BYTES = 16;

/** Workgroup sizes: lavapipe prefers narrow groups (barriers are coroutine switches). */
function wg(engine: Engine, gpu: number, software: number): number {
  return engine.cpuTuning ? software : gpu;
}

/** A 1D range of `n` invocations as a 2D grid when it exceeds the per-dimension limit. */
function grid(engine: Engine, n: number, wgSize: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / wgSize));
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

async function build(engine: Engine, name: string, key: Record<string, unknown>, constants: Record<string, number>, buffers: Buf[], vars: Record<string, string | number> = {}, main = '', edit = (code: string) => code) {
  const pipeline = await engine.pipeline({ op: name, ...key }, edit(`${engine.shader(name, vars)}\n${main}`), constants);
  const bindGroup = engine.device.createBindGroup({
    label: name,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((b, binding) => ({ binding, resource: bind(b) })),
  });
  return { pipeline, bindGroup };
}

function kernel(label: string, p: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup }, dims: (n: number) => [number, number]): Kernel {
  return {
    label,
    encode(pass, nTokens) {
      pass.setPipeline(p.pipeline);
      pass.setBindGroup(0, p.bindGroup);
      const [x, y] = dims(nTokens);
      pass.dispatchWorkgroups(x, y);
    },
  };
}

/** y[t] = rmsnorm(x[t]) · w; x, y f32 [nTokens, dim]. */
export async function createRmsnorm(engine: Engine, o: { params: GPUBuffer; x: GPUBuffer; w: GPUBuffer; y: GPUBuffer; dim: number; eps: number }): Promise<Kernel> {
  const WG = wg(engine, 64, 8);
  const p = await build(engine, 'rmsnorm', { dim: o.dim, eps: o.eps, wg: WG }, { DIM: o.dim, EPS: o.eps, WG }, [o.params, o.x, o.w, o.y], { WG_SUM: engine.shader('wg_sum') });
  return kernel('rmsnorm', p, (n) => [n, 1]);
}

export interface RopeShape {
  nHeads: number; nKvHeads: number; headDim: number; ropeDim: number; kvF16: boolean;
  /** A block type (q8_0, q4_0) takes over from kvF16 (kv-cache.ts); its d plane's place needs contextLength. */
  kvType?: KvType; contextLength?: number;
  /** Cache slots of all sequences (default contextLength): where a block type's d plane starts. */
  kvSlots?: number;
  /**
   * Batched decode: u32 pairs [maxTokens] (position, first cache slot of the
   * token's sequence) per token, instead of params.pos + t and params.base.
   */
  seqs?: GPUBuffer;
}

/** The WGSL that says where each token goes (seq_uniform.wgsl, or with a seqs buffer seq_table.wgsl at `binding`). */
function seqCode(engine: Engine, seqs: GPUBuffer | undefined, binding: number): string {
  return seqs ? engine.shader('seq_table', { BINDING: binding }) : engine.shader('seq_uniform');
}

/**
 * Rotates q in place, rotates k and stores k, v into the caches at slots
 * base+pos…base+pos+n-1 (with seqs: each token at its own). q, k, v lie in
 * one buffer: q at byte 0, k at kOffset, v at vOffset.
 */
export async function createRopeKv(
  engine: Engine,
  o: RopeShape & { params: GPUBuffer; qkv: GPUBuffer; kOffset: number; vOffset: number; table: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer },
): Promise<Kernel> {
  const WG = 64;
  if (o.kOffset % 8 || o.vOffset % 8) throw new GpuError(`rope: k/v offsets (${o.kOffset}, ${o.vOffset}) must be multiples of 8 bytes`);
  if (o.kvType && isBlockKv(o.kvType)) {
    // One invocation per q pair and per 32-value block of k and of v (rope_kv_quant.wgsl).
    const kvDim = o.nKvHeads * o.headDim;
    if (o.contextLength === undefined) throw new GpuError('rope: a block-type KV cache needs contextLength');
    const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, ROPE_DIM: o.ropeDim, WG, K_OFF: o.kOffset / 8, V_OFF: o.vOffset / 8, KV_Q4: o.kvType === 'q4_0' ? 1 : 0, D_BASE: kvDBase(o.kvType, o.kvSlots ?? o.contextLength, kvDim) };
    const p = await build(engine, 'rope_kv_quant', { ...c, seqs: !!o.seqs }, c, [o.params, o.qkv, o.table, o.kCache, o.vCache, ...(o.seqs ? [o.seqs] : [])], {}, seqCode(engine, o.seqs, 5));
    const perToken = (o.nHeads * o.headDim) / 2 + (2 * kvDim) / 32;
    return kernel('rope_kv_quant', p, (n) => grid(engine, n * perToken, WG));
  }
  const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, ROPE_DIM: o.ropeDim, KV_F16: o.kvF16 ? 1 : 0, WG, K_OFF: o.kOffset / 8, V_OFF: o.vOffset / 8 };
  const p = await build(engine, 'rope', { ...c, seqs: !!o.seqs }, c, [o.params, o.qkv, o.table, o.kCache, o.vCache, ...(o.seqs ? [o.seqs] : [])], {}, `${seqCode(engine, o.seqs, 5)}\n${engine.shader('rope_main')}`);
  const perToken = ((o.nHeads + o.nKvHeads) * o.headDim) / 2;
  return kernel('rope', p, (n) => grid(engine, n * perToken, WG));
}

export interface AttentionOptions {
  params: GPUBuffer; q: Buf; kCache: GPUBuffer; vCache: GPUBuffer; out: GPUBuffer;
  nHeads: number; nKvHeads: number; headDim: number; kvF16: boolean;
  /** A block type (q8_0, q4_0) takes over from kvF16: the kernels read its blocks (kv-cache.ts). */
  kvType?: KvType;
  maxTokens: number; contextLength: number;
  /** Split positions into chunks merged by a second kernel. Default: on real GPUs, off on CPU rasterisers. */
  split?: boolean;
  /** Positions per chunk when split (default max(32, ceil(context/32)), so ≤ 32 chunks). */
  chunk?: number;
  /** q is multiplied by this before the dot products (default 1/sqrt(headDim)). */
  scale?: number;
  /** > 0: each score s becomes softcap·tanh(s/softcap) before the softmax (Gemma 2). Default 0 = off. */
  softcap?: number;
  /** > 0: sliding window, position p attends slot j only if p − j < window (llama.cpp SWA standard). Default 0 = off. */
  window?: number;
  /** Cache slots of all sequences (default contextLength): where a block type's d plane starts. */
  kvSlots?: number;
  /**
   * Batched decode (RopeShape.seqs): per token (position, first cache slot of
   * its sequence). Never split: each token's own length sets its loop.
   */
  seqs?: GPUBuffer;
  /** gpt-oss: f32 [nHeads], a logit per head that joins every softmax (attention-sinks.ts). */
  sinks?: GPUBuffer;
}

/**
 * The score constants both attention shaders take (attention_kv.wgsl), for
 * createAttention and a decode chain's attention phase.
 */
export function attentionScoreConstants(o: Pick<AttentionOptions, 'headDim' | 'scale' | 'softcap' | 'window'>): { SCALE: number; SOFTCAP: number; WINDOW: number } {
  const scale = o.scale ?? 1 / Math.sqrt(o.headDim);
  const softcap = o.softcap ?? 0;
  const window = o.window ?? 0;
  if (!Number.isFinite(scale)) throw new GpuError(`attention: scale ${scale} must be finite`);
  if (!(softcap >= 0 && Number.isFinite(softcap))) throw new GpuError(`attention: softcap ${softcap} must be finite and ≥ 0 (0 = off)`);
  if (!(Number.isInteger(window) && window >= 0 && window < 2 ** 32)) throw new GpuError(`attention: window ${window} must be an integer ≥ 0 (0 = off)`);
  return { SCALE: scale, SOFTCAP: softcap, WINDOW: window };
}

/**
 * The subgroup kernel (attention_subgroup.wgsl) serves CPU rasterisers with
 * 8-lane subgroups when the positions are not split and headDim % 16 == 0.
 */
export function useSubgroupAttention(engine: Engine, o: Pick<AttentionOptions, 'split' | 'headDim'>): boolean {
  const split = o.split ?? !engine.cpuTuning;
  const a = engine.adapter;
  return !split && engine.cpuTuning && engine.subgroups && a.subgroupMinSize === 8 && a.subgroupMaxSize === 8 && o.headDim % 16 === 0;
}

/** Heads per workgroup of attention_subgroup.wgsl: the largest divisor of the GQA group size up to 8. */
export function headsPerGroup(nHeads: number, nKvHeads: number): number {
  const group = nHeads / nKvHeads;
  return [8, 4, 3, 2, 1].find((d) => group % d === 0)!;
}

/**
 * Causal GQA attention of q [n, nHeads*headDim] over positions 0…pos+t (or
 * the last `window` of them) of the sequence whose cache starts at slot base
 * into out. Split: one invocation per (token, head, chunk), then a merge
 * kernel. On lavapipe: one subgroup per (token, head), see useSubgroupAttention.
 * With seqs each token reads its own sequence up to its own position.
 */
export async function createAttention(engine: Engine, o: AttentionOptions): Promise<Kernel> {
  const score = attentionScoreConstants(o);
  // The cache's loaders: f32/f16 as always (KV_F16), or a block type's (kv-cache.ts).
  const kv = attentionKvSource((n) => engine.shader(n), o.kvType && isBlockKv(o.kvType) ? o.kvType : o.kvF16 ? 'f16' : 'f32', o.kvSlots ?? o.contextLength, o.nKvHeads * o.headDim);
  if (o.seqs) o = { ...o, split: false }; // the merge counts chunks from params.pos: one sequence only
  const seqs = o.seqs ? [o.seqs] : [];
  // The sinks bind after the kernel's own buffers (and the seq table).
  const sinks = o.sinks ? [o.sinks] : [];
  const sinked = (kernel: Parameters<typeof withSinks>[0], binding: number) => (code: string) => (o.sinks ? withSinks(kernel, code, binding) : code);
  if (useSubgroupAttention(engine, o)) {
    const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, ...kv.constants, ...score };
    // Heads per workgroup: the largest divisor of the GQA group size up to 8.
    // TinyLlama (8 per group) at 260 positions, decode ms/token: 1 head 11.5, 4 heads 7.5, 8 heads 5.3.
    const hg = headsPerGroup(o.nHeads, o.nKvHeads);
    const main = `${engine.shader('attention_subgroup_main')}\n${seqCode(engine, o.seqs, 5)}`;
    const bufs = [o.params, o.q, o.kCache, o.vCache, o.out, ...seqs];
    const p = await build(engine, 'attention_subgroup', { ...c, hg, seqs: !!o.seqs, sinks: !!o.sinks }, c, [...bufs, ...sinks], { PAIRS: o.headDim / 16, HG: hg, KV: kv.code }, main, sinked('attention_subgroup', bufs.length));
    return kernel('attention_subgroup', p, (n) => grid(engine, (n * o.nHeads) / hg, 1));
  }
  const WG = wg(engine, 32, 8);
  const split = o.split ?? !engine.cpuTuning;
  const chunk = split ? (o.chunk ?? Math.max(32, Math.ceil(o.contextLength / 32))) : o.contextLength;
  const maxChunks = Math.ceil(o.contextLength / chunk);
  const half = o.headDim / 2;
  const dims = engine.createBuffer('other', 'attention dims', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(dims, 0, new Uint32Array([half, 0, 0, 0]));
  const partBytes = split ? o.maxTokens * o.nHeads * maxChunks * (half + 1) * 8 : 16;
  const part = engine.createBuffer('activations', 'attention partials', partBytes, GPUBufferUsage.STORAGE);
  const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, ...kv.constants, ...score, SPLIT: split ? 1 : 0, CHUNK: chunk, WG };
  const bufs = [o.params, o.q, o.kCache, o.vCache, o.out, dims, part, ...seqs];
  const p = await build(engine, 'attention', { ...c, seqs: !!o.seqs, sinks: !!o.sinks && !split }, c, [...bufs, ...(split ? [] : sinks)], { HALF: half, KV: kv.code }, seqCode(engine, o.seqs, 7), split ? undefined : sinked('attention', bufs.length));
  const mc = { N_HEADS: o.nHeads, HEAD_DIM: o.headDim, CHUNK: chunk, WG: 64 };
  const merge = split ? await build(engine, 'attention_merge', { ...mc, sinks: !!o.sinks }, mc, [o.params, part, o.out, ...sinks], {}, '', sinked('attention_merge', 3)) : undefined;
  return {
    label: 'attention',
    buffers: [dims, part],
    encode(pass, nTokens, pos) {
      if (pos === undefined) throw new Error('attention.encode needs pos');
      const nChunks = Math.ceil((pos + nTokens) / chunk);
      pass.setPipeline(p.pipeline);
      pass.setBindGroup(0, p.bindGroup);
      pass.dispatchWorkgroups(...grid(engine, nTokens * o.nHeads * nChunks, WG));
      if (merge) {
        pass.setPipeline(merge.pipeline);
        pass.setBindGroup(0, merge.bindGroup);
        pass.dispatchWorkgroups(...grid(engine, nTokens * o.nHeads * half, 64));
      }
    },
  };
}

/**
 * gate = act(gate) · up over [n, ffnDim]; gate at byte 0 of `gu`, up at upOffset.
 * act 'silu' (default, SwiGLU) or 'gelu' (GeGLU: ggml-cpu's tanh-approximation
 * GELU with its f16 table, see swiglu.wgsl).
 */
export async function createSwiglu(engine: Engine, o: { params: GPUBuffer; gu: GPUBuffer; upOffset: number; ffnDim: number; act?: 'silu' | 'gelu' }): Promise<Kernel> {
  const WG = 64;
  if (o.upOffset % 4) throw new GpuError(`swiglu: up offset ${o.upOffset} must be a multiple of 4 bytes`);
  const act = o.act ?? 'silu';
  if (act !== 'silu' && act !== 'gelu') throw new GpuError(`swiglu: act ${act} must be 'silu' or 'gelu'`);
  const c = { FFN: o.ffnDim, WG, UP_OFF: o.upOffset / 4, GELU: act === 'gelu' ? 1 : 0 };
  const p = await build(engine, 'swiglu', c, c, [o.params, o.gu]);
  return kernel(act === 'gelu' ? 'geglu' : 'swiglu', p, (n) => grid(engine, n * o.ffnDim, WG));
}

/** Byte offset → f32 element offset, checked. */
function floats(op: string, what: string, bytes: number): number {
  if (!(Number.isInteger(bytes) && bytes >= 0 && bytes % 4 === 0)) throw new GpuError(`${op}: ${what} ${bytes} must be a multiple of 4 bytes`);
  return bytes / 4;
}

/** buf[offset…] holds f32 [nTokens, n]; adds bias (f32 [n]) to every row, in place (Qwen2 q/k/v biases). */
export async function createBiasAdd(engine: Engine, o: { params: GPUBuffer; buf: GPUBuffer; offset: number; bias: GPUBuffer; n: number }): Promise<Kernel> {
  const WG = 64;
  const c = { N: o.n, OFF: floats('bias add', 'offset', o.offset), WG };
  const p = await build(engine, 'bias_add', c, c, [o.params, o.buf, o.bias]);
  return kernel('bias_add', p, (n) => grid(engine, n * o.n, WG));
}

/**
 * In-place RMSNorm of groups: buf[offset…] holds f32 [nTokens, groups, size];
 * each vector x of `size` becomes x / sqrt(mean(x²) + eps) · w (f32 [size]).
 * Per-head q/k norm (Qwen3, Gemma 3): groups = heads, size = headDim; OLMo2's
 * whole-vector q/k norm: groups = 1, size = heads·headDim.
 */
export async function createGroupNorm(engine: Engine, o: { params: GPUBuffer; buf: GPUBuffer; offset: number; w: GPUBuffer; groups: number; size: number; eps: number }): Promise<Kernel> {
  const WG = wg(engine, 64, 8);
  const c = { GROUPS: o.groups, SIZE: o.size, EPS: o.eps, OFF: floats('group norm', 'offset', o.offset), WG };
  const p = await build(engine, 'group_norm', c, c, [o.params, o.buf, o.w], { WG_SUM: engine.shader('wg_sum') });
  return kernel('group_norm', p, (n) => grid(engine, n * o.groups, 1));
}

/**
 * x[t] += scale · (w ? rmsnorm(y[t]) · w : y[t]) for x, y f32 [nTokens, dim]
 * (different buffers): Gemma 2/3 and OLMo2's post-attention/post-FFN norms,
 * Granite's residual_scale. scale defaults to 1 (exact); eps is used with w only.
 */
export async function createResidualAdd(engine: Engine, o: { params: GPUBuffer; x: GPUBuffer; y: GPUBuffer; w?: GPUBuffer; dim: number; eps: number; scale?: number }): Promise<Kernel> {
  const WG = wg(engine, 64, 8);
  const scale = o.scale ?? 1;
  if (!Number.isFinite(scale)) throw new GpuError(`residual add: scale ${scale} must be finite`);
  const c = { DIM: o.dim, NORM: o.w ? 1 : 0, EPS: o.w ? o.eps : 0, SCALE: scale, WG };
  // Without w the shader never reads binding 3; y's buffer fills it (two read-only bindings of one buffer are allowed).
  const p = await build(engine, 'residual_add', c, c, [o.params, o.x, o.y, o.w ?? o.y], { WG_SUM: engine.shader('wg_sum') });
  return kernel(o.w ? 'residual_norm_add' : 'residual_add', p, (n) => grid(engine, n, 1));
}

/**
 * Logits in place over rows t < nTokens of x f32 [nTokens, n]: v·scale (default
 * 1), then softcap·tanh(v/softcap) if softcap > 0 (Granite's 1/logit_scale,
 * Gemma 2's final-logit softcap).
 */
export async function createLogitsPost(engine: Engine, o: { params: GPUBuffer; x: GPUBuffer; n: number; scale?: number; softcap?: number }): Promise<Kernel> {
  const WG = 64;
  const scale = o.scale ?? 1;
  const softcap = o.softcap ?? 0;
  if (!Number.isFinite(scale)) throw new GpuError(`logits: scale ${scale} must be finite`);
  if (!(softcap >= 0 && Number.isFinite(softcap))) throw new GpuError(`logits: softcap ${softcap} must be finite and ≥ 0 (0 = off)`);
  const c = { N: o.n, SCALE: scale, SOFTCAP: softcap, WG };
  const p = await build(engine, 'logits_post', c, c, [o.params, o.x], { TANH: engine.shader('tanh') });
  return kernel('logits_post', p, (n) => grid(engine, n * o.n, WG));
}

/** out[0] = argmax of row nTokens-1 of x [nTokens, n] (u32); with rows, out[t] = argmax of row t for every t < nTokens. */
export async function createArgmax(engine: Engine, o: { params: GPUBuffer; x: GPUBuffer; out: GPUBuffer; n: number; rows?: boolean }): Promise<Kernel> {
  const WG = wg(engine, 256, 8);
  const c = { N: o.n, WG, ...(o.rows ? { ROWS: 1 } : {}) };
  const p = await build(engine, 'argmax', { n: o.n, wg: WG, rows: !!o.rows }, c, [o.params, o.x, o.out]);
  return kernel(o.rows ? 'argmax_rows' : 'argmax', p, (n) => [o.rows ? n : 1, 1]);
}

/**
 * The rope angle table, f32 (cos, sin) [contextLength][ropeDim/2]: angle =
 * (pos / linearFactor) · base^(-2i/ropeDim) / freqFactors[i], computed in f64
 * so that long positions lose no precision to f32 angle arithmetic on the GPU.
 * freqFactors is the optional rope_freqs tensor (llama 3 scaling).
 */
export function ropeTable(contextLength: number, ropeDim: number, base: number, linearFactor: number, freqFactors?: Float32Array): Float32Array {
  const half = ropeDim / 2;
  const t = new Float32Array(contextLength * ropeDim);
  for (let i = 0; i < half; i++) {
    const freq = base ** ((-2 * i) / ropeDim) / (freqFactors?.[i] ?? 1);
    for (let p = 0; p < contextLength; p++) {
      const a = (p / linearFactor) * freq;
      t[(p * half + i) * 2] = Math.cos(a);
      t[(p * half + i) * 2 + 1] = Math.sin(a);
    }
  }
  return t;
}
