// The MoE router on the GPU (shaders/moe_router.wgsl): router logits
// [nTokens, nExperts] → each token's k experts and weights, written to a
// `routes` buffer that the expert products (moe.ts) read on the GPU, so
// decode never reads router decisions back. With several tokens it also
// groups the (token, slot) pairs by expert into tiles for the prefill matmul.
// The modes are llama.cpp's build_moe_ffn (src/llama-graph.cpp):
//   Qwen3-MoE, Mixtral:  gating 'softmax', normalize true
//   OLMoE:               gating 'softmax', normalize false
//   gpt-oss:             gating 'softmax_weight' (top-k on the logits, then a
//                        softmax over the k), bias = ffn_gate_inp.bias
//   sigmoid families:    gating 'sigmoid' (DeepSeek V3's selection bias
//                        exp_probs_b is not supported)
// scale is llama.cpp's expert_weights_scale (0 or 1: none).
import { GpuError } from '../errors.ts';
import type { Engine } from './engine.ts';

export type Gating = 'softmax' | 'sigmoid' | 'softmax_weight';

/** Pairs per prefill tile: an expert's pairs are cut into runs of at most this many. */
export const MOE_TILE = 16;

/** The routes buffer's layout (u32 words) for maxTokens tokens of k experts each; see moe_router.wgsl. */
export interface RoutesLayout {
  nExperts: number;
  k: number;
  maxTokens: number;
  /** maxTokens · k: ids at 0, weights at m, the grouped pair list at 2m, tiles at 3m. */
  m: number;
  /** Words of the whole buffer. */
  words: number;
}

export function routesLayout(nExperts: number, k: number, maxTokens: number): RoutesLayout {
  const m = maxTokens * k;
  return { nExperts, k, maxTokens, m, words: 3 * m + 1 + 2 * maxTiles(m, nExperts) };
}

/** At most this many tiles for n pairs over e experts: Σ ceil(c/T) ≤ (n + min(e, n)(T - 1)) / T. */
export function maxTiles(pairs: number, nExperts: number): number {
  return Math.floor((pairs + Math.min(nExperts, pairs) * (MOE_TILE - 1)) / MOE_TILE);
}

export interface RouterIO {
  /** f32 [maxTokens, nExperts] router logits (ffn_gate_inp · x). */
  logits: GPUBuffer;
  /** Byte offset of the logits (a multiple of 4). */
  logitsOffset?: number;
  /** f32 [nExperts] added to the logits first (gpt-oss's ffn_gate_inp.bias). */
  bias?: GPUBuffer;
  /** Written: the routes (u32 [routesLayout().words], STORAGE). */
  routes: GPUBuffer;
  /** Uniform; u32 at byte 0 = nTokens (the caller writes it each step, as for createMatmul). */
  params: GPUBuffer;
  maxTokens: number;
  nExperts: number;
  k: number;
  gating: Gating;
  /** Divide the k weights by their sum (llama.cpp's norm_w). */
  normalize?: boolean;
  /** Multiply the weights by this (llama.cpp's expert_weights_scale; 0 or absent: 1). */
  scale?: number;
}

export interface Router {
  readonly layout: RoutesLayout;
  encode(pass: GPUComputePassEncoder, nTokens: number): void;
}

const GATING: Record<Gating, number> = { softmax: 0, sigmoid: 1, softmax_weight: 2 };
const WG = 64;

export async function createRouter(engine: Engine, io: RouterIO): Promise<Router> {
  const { nExperts: E, k, maxTokens } = io;
  const off = io.logitsOffset ?? 0;
  if (!(Number.isInteger(E) && E >= 1 && E < 65536)) throw new GpuError(`router: ${E} experts is outside 1..65535`);
  if (!(Number.isInteger(k) && k >= 1 && k <= Math.min(E, 32))) throw new GpuError(`router: top-${k} of ${E} experts is not possible (k in 1..min(experts, 32))`);
  if (!(maxTokens >= 1)) throw new GpuError(`router: maxTokens ${maxTokens} must be >= 1`);
  if (!(io.gating in GATING)) throw new GpuError(`router: unknown gating '${io.gating}' (softmax, sigmoid, softmax_weight)`);
  if (off % 4) throw new GpuError(`router: logits offset ${off} must be a multiple of 4 bytes`);
  const layout = routesLayout(E, k, maxTokens);
  if (io.logits.size < off + maxTokens * E * 4) throw new GpuError(`router: logits buffer (${io.logits.size} B) is smaller than ${maxTokens} × ${E} f32 at offset ${off}`);
  if (io.routes.size < layout.words * 4) throw new GpuError(`router: routes buffer (${io.routes.size} B) is smaller than ${layout.words} words`);
  if (io.bias && io.bias.size < E * 4) throw new GpuError(`router: bias buffer (${io.bias.size} B) is smaller than ${E} f32`);
  const scale = io.scale || 1;
  if (!Number.isFinite(scale)) throw new GpuError(`router: scale ${scale} must be finite`);
  const bias = io.bias
    ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;\nfn lbias(e: u32) -> f32 { return bias[e]; }'
    : 'fn lbias(e: u32) -> f32 { return 0.0; }';
  const code = engine.shader('moe_router', { BIAS: bias, K: k });
  const consts = { WG, E, M: layout.m, LOFF: off / 4, GATING: GATING[io.gating], NORM: io.normalize ? 1 : 0, SCALE: scale, G: MOE_TILE };
  const pipe = await engine.pipeline({ kind: 'moe_router', k, bias: !!io.bias, ...consts }, code, consts);
  const bg = engine.device.createBindGroup({
    label: 'moe router',
    layout: pipe.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: io.params } },
      { binding: 1, resource: { buffer: io.logits } },
      { binding: 2, resource: { buffer: io.routes } },
      ...(io.bias ? [{ binding: 3, resource: { buffer: io.bias } }] : []),
    ],
  });
  return {
    layout,
    encode(pass, nTokens) {
      if (!(nTokens >= 1 && nTokens <= maxTokens)) throw new GpuError(`router: nTokens ${nTokens} is outside 1..${maxTokens}`);
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(1);
    },
  };
}
