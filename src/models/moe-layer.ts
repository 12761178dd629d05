// A mixture-of-experts FFN in the forward pass (llama.cpp's build_moe_ffn):
// per step of n tokens, after the FFN norm (xn = rmsnorm(x), [n, dim]):
//   logits = ffn_gate_inp · xn                 [n, E]      createMatmul
//   routes = top-k experts and weights          (router.ts) on the GPU, never read back
//   gate, up = the chosen experts' rows · xn    [n, k, ff]  createMoeProduct (pairs)
//   h = silu(gate) · up                         [n, k, ff]  the swiglu kernel over k·ff
//   x += Σ_s w_s · down_{e_s} · h_s             [n, dim]    createMoeProduct with combine
// gpt-oss (MoePlan.oai) adds the router's bias to the logits, each chosen
// expert's biases to its gate and up rows and its down output (llama.cpp's
// ggml_add_id), and activates with SwiGLU-OAI: moe_glu_oai.wgsl adds the
// gate/up biases and activates in one dispatch; moe_bias_sum.wgsl adds
// Σ_s w_s · down_bias[e_s] after the down product's own weighted sum.
// Decode (one token) reads only the k chosen experts' rows; prefill groups the
// (token, slot) pairs by expert so each expert's rows are dequantized once per
// tile of tokens (moe.ts). The steps fill the same slots of a Layer as a dense
// FFN (gate|up products, act, down), so llama.ts's submit runs them unchanged.
// The activation buffers are shared by all layers (moeActivations sizes them
// for the memory plan too).
import { GgufError } from '../errors.ts';
import type { TensorInfo } from '../gguf/types.ts';
import type { Engine } from '../gpu/engine.ts';
import { createMatmul } from '../gpu/matmul.ts';
import { createMoeProduct, type MoeProduct } from '../gpu/moe.ts';
import { createRouter, routesLayout } from '../gpu/router.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import type { MoePlan } from './family.ts';
import { createSwiglu } from './kernels.ts';
import { align256, type Product, type Step } from './llama-parts.ts';
import type { LayerTensors } from './llama-tensors.ts';

/** The MoE activation buffers for maxTokens = B, by label and bytes (llama.ts allocates them, memory-plan.ts counts them). */
export function moeActivations(m: MoePlan, B: number, dim: number): { logits: number; routes: number; gu: number; upOffset: number; pairs: number } {
  const pairRows = B * m.used;
  const upOffset = align256(pairRows * m.ff * 4);
  return {
    logits: B * m.experts * 4, // f32 [B, E]
    routes: routesLayout(m.experts, m.used, B).words * 4, // u32, router.ts
    gu: upOffset + pairRows * m.ff * 4, // gate [B, k, ff] at 0, up at upOffset
    upOffset,
    pairs: pairRows * dim * 4, // ffn_down per pair before the weighted sum (prefill) [B, k, dim]
  };
}

export interface MoeBuffers { logits: GPUBuffer; routes: GPUBuffer; gu: GPUBuffer; upOffset: number; pairs: GPUBuffer }

/** Allocates the shared buffers through `buffer` (the model's, which counts them as activations). */
export function createMoeBuffers(m: MoePlan, B: number, dim: number, buffer: (label: string, bytes: number) => GPUBuffer): MoeBuffers {
  const s = moeActivations(m, B, dim);
  return { logits: buffer('moe logits', s.logits), routes: buffer('moe routes', s.routes), gu: buffer('moe gate|up', s.gu), upOffset: s.upOffset, pairs: buffer('moe pairs', s.pairs) };
}

export interface MoeFfnIO {
  plan: MoePlan;
  bufs: MoeBuffers;
  /** Uniform {nTokens, pos, …} of the step. */
  params: GPUBuffer;
  maxTokens: number;
  /** The FFN input (the norm's output) [B, dim] and the residual stream the output is added to. */
  xn: GPUBuffer;
  x: GPUBuffer;
  /** Uploads a weight (the model's: counts load progress, frees it on dispose); uploadVector: a 1-D or bias tensor as f32. */
  upload: (t: TensorInfo) => Promise<GpuWeight>;
  uploadVector: (t: TensorInfo) => Promise<GPUBuffer>;
  /** Weight bytes one decode token reads per profile label: only the k chosen experts' share of each expert tensor. */
  stepBytes: (label: string, ts: TensorInfo[]) => void;
}

/** A Layer's FFN slots for a MoE layer: the products (router logits, router, gate, up), the activation and the down with its weighted sum. */
export async function createMoeFfn(e: Engine, L: LayerTensors, io: MoeFfnIO): Promise<{ gateUp: Product[]; act: Step; down: Step & { gluFused: boolean } }> {
  const m = io.plan, b = io.bufs, B = io.maxTokens;
  if (!L.gateInp) throw new GgufError(`internal error: layer tensors ${L.gate.name} are not a MoE layer's`);
  // A decode token reads k of E experts: the profile's GB/s counts that share.
  const active = (t: TensorInfo): TensorInfo => ({ ...t, nBytes: (t.nBytes * m.used) / m.experts });
  io.stepBytes('ffn_gate_inp', [L.gateInp]);
  io.stepBytes('ffn_gate_exps', [active(L.gate)]);
  io.stepBytes('ffn_up_exps', [active(L.up)]);
  io.stepBytes('ffn_down', [active(L.down)]);
  const [wInp, wGate, wUp, wDown] = [await io.upload(L.gateInp), await io.upload(L.gate), await io.upload(L.up), await io.upload(L.down)];

  const oai = m.oai ? await oaiBiases(L, io) : undefined;
  const logits = await createMatmul(e, wInp, { x: io.xn, y: b.logits, params: io.params, maxTokens: B });
  const router = await createRouter(e, { logits: b.logits, routes: b.routes, params: io.params, maxTokens: B, nExperts: m.experts, k: m.used, gating: m.gating, normalize: m.normalize, bias: oai?.router });
  const pairsOf = (w: GpuWeight, yOffset: number) => createMoeProduct(e, w, { x: io.xn, y: b.gu, yOffset, routes: b.routes, layout: router.layout, params: io.params });
  const gate = await pairsOf(wGate, 0);
  const up = await pairsOf(wUp, b.upOffset);
  // x += Σ_s w_s · down_e(h_s): fused into the decode matvec, a combine dispatch after the prefill matmul.
  const down = await createMoeProduct(e, wDown, { x: b.gu, xPerPair: true, y: b.pairs, routes: b.routes, layout: router.layout, params: io.params, combine: { out: io.x, accumulate: true } });
  const flags = { normFused: false, ropeFused: false, gluStored: false };
  const step = (p: MoeProduct) => ({ encode: (pass: GPUComputePassEncoder, n: number) => p.encode(pass, n), ...flags });
  return {
    gateUp: [
      { label: 'ffn_gate_inp', step: { encode: (pass, n) => logits.encode(pass, n), ...flags }, w: wInp },
      { label: 'moe router', step: { encode: (pass, n) => router.encode(pass, n), ...flags }, w: wInp },
      { label: 'ffn_gate_exps', step: step(gate), w: wGate },
      { label: 'ffn_up_exps', step: step(up), w: wUp },
    ],
    act: oai ? await oaiKernel(e, 'moe_glu_oai', { FF: m.ff, K: m.used, UP_OFF: b.upOffset / 4 }, [io.params, b.gu, b.routes, oai.gate, oai.up], m.used * m.ff)
      : await createSwiglu(e, { params: io.params, gu: b.gu, upOffset: b.upOffset, ffnDim: m.used * m.ff, act: 'silu' }),
    down: oai ? twoSteps(down, await oaiKernel(e, 'moe_bias_sum', { N: L.down.dims[1], M: router.layout.m, K: m.used }, [io.params, b.routes, oai.down, io.x], L.down.dims[1])) : { encode: (pass, n) => down.encode(pass, n), gluFused: false },
  };
}

/** gpt-oss's bias vectors of one layer, uploaded as f32: the router's [E] and the experts' [E, ff], [E, ff], [E, dim]. */
async function oaiBiases(L: LayerTensors, io: MoeFfnIO): Promise<{ router: GPUBuffer; gate: GPUBuffer; up: GPUBuffer; down: GPUBuffer }> {
  const need = (t: TensorInfo | undefined, what: string) => {
    if (!t) throw new GgufError(`internal error: ${L.gate.name}'s layer has no ${what} bias`);
    return io.uploadVector(t);
  };
  return { router: await need(L.gateInpBias, 'router'), gate: await need(L.gateExpsBias, 'gate'), up: await need(L.upExpsBias, 'up'), down: await need(L.downExpsBias, 'down') };
}

/** One of the gpt-oss kernels (moe_glu_oai.wgsl, moe_bias_sum.wgsl): one invocation per element of nTokens · perToken. */
async function oaiKernel(e: Engine, name: string, consts: Record<string, number>, buffers: GPUBuffer[], perToken: number): Promise<Step> {
  const WG = 64;
  const c = { WG, ...consts };
  const pipe = await e.pipeline({ op: name, ...c }, e.shader(name), c);
  const bg = e.device.createBindGroup({ label: name, layout: pipe.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const max = e.limits.maxComputeWorkgroupsPerDimension;
  return {
    encode(pass, n) {
      const groups = Math.ceil((n * perToken) / WG), y = Math.ceil(groups / max);
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(Math.ceil(groups / y), y);
    },
  };
}

/** The down slot as the product (its weighted sum into x) and then the bias sum. */
function twoSteps(first: MoeProduct, then: Step): Step & { gluFused: boolean } {
  return {
    encode(pass, n) {
      first.encode(pass, n);
      then.encode(pass, n);
    },
    gluFused: false,
  };
}
