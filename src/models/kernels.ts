// The model's own kernels (rmsnorm, rope + KV store, attention, swiglu, argmax):
// each factory builds its pipeline and bind group once, at load time, and returns
// an `encode(pass, nTokens)` that only records a dispatch. Every kernel reads the
// per-step uniform `params` (u32 nTokens at byte 0, u32 pos at byte 4).
import { GpuError } from '../errors.ts';
import type { Engine } from '../gpu/engine.ts';

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

/** Bytes of the per-step uniform: nTokens, pos, 2 × pad. */
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

async function build(engine: Engine, name: string, key: Record<string, unknown>, constants: Record<string, number>, buffers: Buf[], vars: Record<string, string | number> = {}, main = '') {
  const pipeline = await engine.pipeline({ op: name, ...key }, `${engine.shader(name, vars)}\n${main}`, constants);
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
  const p = await build(engine, 'rmsnorm', { dim: o.dim, wg: WG }, { DIM: o.dim, EPS: o.eps, WG }, [o.params, o.x, o.w, o.y]);
  return kernel('rmsnorm', p, (n) => [n, 1]);
}

export interface RopeShape { nHeads: number; nKvHeads: number; headDim: number; ropeDim: number; kvF16: boolean }

/**
 * Rotates q in place, rotates k and stores k, v into the caches at slots
 * pos…pos+n-1. q, k, v lie in one buffer: q at byte 0, k at kOffset, v at vOffset.
 */
export async function createRopeKv(
  engine: Engine,
  o: RopeShape & { params: GPUBuffer; qkv: GPUBuffer; kOffset: number; vOffset: number; table: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer },
): Promise<Kernel> {
  const WG = 64;
  if (o.kOffset % 8 || o.vOffset % 8) throw new GpuError(`rope: k/v offsets (${o.kOffset}, ${o.vOffset}) must be multiples of 8 bytes`);
  const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, ROPE_DIM: o.ropeDim, KV_F16: o.kvF16 ? 1 : 0, WG, K_OFF: o.kOffset / 8, V_OFF: o.vOffset / 8 };
  const p = await build(engine, 'rope', c, c, [o.params, o.qkv, o.table, o.kCache, o.vCache]);
  const perToken = ((o.nHeads + o.nKvHeads) * o.headDim) / 2;
  return kernel('rope', p, (n) => grid(engine, n * perToken, WG));
}

export interface AttentionOptions {
  params: GPUBuffer; q: Buf; kCache: GPUBuffer; vCache: GPUBuffer; out: GPUBuffer;
  nHeads: number; nKvHeads: number; headDim: number; kvF16: boolean;
  maxTokens: number; contextLength: number;
  /** Split positions into chunks merged by a second kernel. Default: on real GPUs, off on CPU rasterisers. */
  split?: boolean;
  /** Positions per chunk when split (default max(32, ceil(context/32)), so ≤ 32 chunks). */
  chunk?: number;
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
 * Causal GQA attention of q [n, nHeads*headDim] over cache slots 0…pos+t into
 * out. Split: one invocation per (token, head, chunk), then a merge kernel.
 * On lavapipe: one subgroup per (token, head), see useSubgroupAttention.
 */
export async function createAttention(engine: Engine, o: AttentionOptions): Promise<Kernel> {
  if (useSubgroupAttention(engine, o)) {
    const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, KV_F16: o.kvF16 ? 1 : 0, SCALE: 1 / Math.sqrt(o.headDim) };
    // Heads per workgroup: the largest divisor of the GQA group size up to 8.
    // TinyLlama (8 per group) at 260 positions, decode ms/token: 1 head 11.5, 4 heads 7.5, 8 heads 5.3.
    const hg = headsPerGroup(o.nHeads, o.nKvHeads);
    const p = await build(engine, 'attention_subgroup', { ...c, hg }, c, [o.params, o.q, o.kCache, o.vCache, o.out], { PAIRS: o.headDim / 16, HG: hg, KV: engine.shader('attention_kv') }, engine.shader('attention_subgroup_main'));
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
  const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, KV_F16: o.kvF16 ? 1 : 0, SCALE: 1 / Math.sqrt(o.headDim), SPLIT: split ? 1 : 0, CHUNK: chunk, WG };
  const p = await build(engine, 'attention', c, c, [o.params, o.q, o.kCache, o.vCache, o.out, dims, part], { HALF: half, KV: engine.shader('attention_kv') });
  const mc = { N_HEADS: o.nHeads, HEAD_DIM: o.headDim, CHUNK: chunk, WG: 64 };
  const merge = split ? await build(engine, 'attention_merge', mc, mc, [o.params, part, o.out]) : undefined;
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

/** gate = silu(gate) · up over [n, ffnDim]; gate at byte 0 of `gu`, up at upOffset. */
export async function createSwiglu(engine: Engine, o: { params: GPUBuffer; gu: GPUBuffer; upOffset: number; ffnDim: number }): Promise<Kernel> {
  const WG = 64;
  if (o.upOffset % 4) throw new GpuError(`swiglu: up offset ${o.upOffset} must be a multiple of 4 bytes`);
  const c = { FFN: o.ffnDim, WG, UP_OFF: o.upOffset / 4 };
  const p = await build(engine, 'swiglu', c, c, [o.params, o.gu]);
  return kernel('swiglu', p, (n) => grid(engine, n * o.ffnDim, WG));
}

/** out[0] = argmax of row nTokens-1 of x [nTokens, n] (u32). */
export async function createArgmax(engine: Engine, o: { params: GPUBuffer; x: GPUBuffer; out: GPUBuffer; n: number }): Promise<Kernel> {
  const WG = wg(engine, 256, 8);
  const p = await build(engine, 'argmax', { n: o.n, wg: WG }, { N: o.n, WG }, [o.params, o.x, o.out]);
  return kernel('argmax', p, () => [1, 1]);
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
