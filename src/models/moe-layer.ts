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
// Qwen2-MoE (MoePlan.sharedFf) adds a shared expert on the same xn, after the
// routed experts' gate/up products (sharedExpert below):
//   gu_s = gate_s|up_s · xn                     [n, 2, sharedFf]  one product (createMatmul)
//   h_s = silu(gate_s) · up_s                   the swiglu kernel, unless one token's product did it
//   y_s = down_s · h_s                          [n, dim]          createMatmul
//   x += σ(ffn_gate_inp_shexp · xn) · y_s       sigmoid_gate_add.wgsl (gate, scale and add in one)
// llama.cpp adds the shared output to the routed sum and that to the residual;
// here each adds into x in turn (the same up to f32 rounding of the order).
// The activation buffers are shared by all layers (moeActivations sizes them
// for the memory plan too).
import { GgufError } from '../errors.ts';
import type { TensorInfo } from '../gguf/types.ts';
import type { Engine } from '../gpu/engine.ts';
import { createMatmul, gluInterleave, type Matmul } from '../gpu/matmul.ts';
import { createMoeProduct, createSigmoidGateAdd, type MoeProduct } from '../gpu/moe.ts';
import { createRouter, routesLayout } from '../gpu/router.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import type { MoePlan } from './family.ts';
import { createSwiglu } from './kernels.ts';
import { align256, type Product, type Step } from './llama-parts.ts';
import type { LayerTensors } from './llama-tensors.ts';

/** The MoE activation buffers for maxTokens = B, by label and bytes (llama.ts allocates them, memory-plan.ts counts them); shared: 0 without a shared expert. */
export function moeActivations(m: MoePlan, B: number, dim: number): { logits: number; routes: number; gu: number; upOffset: number; pairs: number; sharedGu: number; sharedUpOffset: number; sharedOut: number } {
  const pairRows = B * m.used;
  const upOffset = align256(pairRows * m.ff * 4);
  const sharedUpOffset = m.sharedFf ? align256(B * m.sharedFf * 4) : 0;
  return {
    logits: B * m.experts * 4, // f32 [B, E]
    routes: routesLayout(m.experts, m.used, B).words * 4, // u32, router.ts
    gu: upOffset + pairRows * m.ff * 4, // gate [B, k, ff] at 0, up at upOffset
    upOffset,
    pairs: pairRows * dim * 4, // ffn_down per pair before the weighted sum (prefill) [B, k, dim]
    sharedGu: m.sharedFf ? sharedUpOffset + B * m.sharedFf * 4 : 0, // the shared expert's gate [B, sharedFf] at 0, up at sharedUpOffset
    sharedUpOffset,
    sharedOut: m.sharedFf ? B * dim * 4 : 0, // its down output before the sigmoid gate [B, dim]
  };
}

export interface MoeBuffers {
  logits: GPUBuffer; routes: GPUBuffer; gu: GPUBuffer; upOffset: number; pairs: GPUBuffer;
  /** The shared expert's gate|up (up at upOffset bytes) and down output (MoePlan.sharedFf > 0). */
  shared?: { gu: GPUBuffer; upOffset: number; out: GPUBuffer };
}

/** Allocates the shared buffers through `buffer` (the model's, which counts them as activations). */
export function createMoeBuffers(m: MoePlan, B: number, dim: number, buffer: (label: string, bytes: number) => GPUBuffer): MoeBuffers {
  const s = moeActivations(m, B, dim);
  const shared = m.sharedFf ? { gu: buffer('moe shared gate|up', s.sharedGu), upOffset: s.sharedUpOffset, out: buffer('moe shared out', s.sharedOut) } : undefined;
  return { logits: buffer('moe logits', s.logits), routes: buffer('moe routes', s.routes), gu: buffer('moe gate|up', s.gu), upOffset: s.upOffset, pairs: buffer('moe pairs', s.pairs), shared };
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
  /** Uploads tensors of one type and row length as one weight (uploadConcat), rows interleaved in blocks of `interleave` when given. */
  uploadConcat: (ts: TensorInfo[], interleave?: number) => Promise<GpuWeight>;
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
      ...(m.sharedFf ? await sharedExpert(e, L, io) : []),
    ],
    act: oai ? await oaiKernel(e, 'moe_glu_oai', { FF: m.ff, K: m.used, UP_OFF: b.upOffset / 4 }, [io.params, b.gu, b.routes, oai.gate, oai.up], m.used * m.ff)
      : await createSwiglu(e, { params: io.params, gu: b.gu, upOffset: b.upOffset, ffnDim: m.used * m.ff, act: 'silu' }),
    down: oai ? twoSteps(down, await oaiKernel(e, 'moe_bias_sum', { N: L.down.dims[1], M: router.layout.m, K: m.used }, [io.params, b.routes, oai.down, io.x], L.down.dims[1])) : { encode: (pass, n) => down.encode(pass, n), gluFused: false },
  };
}

/**
 * Qwen2-MoE's shared expert as steps of the layer's gate/up slot, run after
 * the routed experts' products: x += σ(w_g · xn) · down_s(silu(gate_s · xn) ⊙ up_s · xn).
 * Every step's flags stay false (the layer's own ffn_norm and swiglu still
 * run for the routed experts); the shared swiglu is skipped on its own where
 * one token's products apply it (CPU kernels: gate|up interleaved stores
 * silu(gate)·up; GPU kernels: down applies it as it loads x).
 */
async function sharedExpert(e: Engine, L: LayerTensors, io: MoeFfnIO): Promise<Product[]> {
  const m = io.plan, s = io.bufs.shared, B = io.maxTokens, dim = L.down.dims[1];
  const [gInp, gate, up, down] = [L.gateInpShexp, L.gateShexp, L.upShexp, L.downShexp];
  if (!gInp || !gate || !up || !down || !s) throw new GgufError(`internal error: ${L.gate.name}'s layer has no shared expert`);
  io.stepBytes('ffn_gate_up_shexp', [gate, up]);
  io.stepBytes('ffn_down_shexp', [down]);
  io.stepBytes('shexp gate', [gInp]);
  const flags = { normFused: false, ropeFused: false, gluStored: false };
  const mm = (p: Matmul) => ({ encode: (pass: GPUComputePassEncoder, n: number) => p.encode(pass, n), ...flags });
  const out: Product[] = [];
  // gate|up: one weight and one dispatch where both have one type (as a dense FFN's), else two products.
  let glu = false;
  if (gate.type.id === up.type.id) {
    const G = gluInterleave(e, gate.type.id, gate.dims[0]);
    const interleave = G && m.sharedFf % G === 0 ? G : undefined;
    const w = await io.uploadConcat([gate, up], interleave);
    const p = await createMatmul(e, w, { x: io.xn, y: s.gu, yOffsets: [0, s.upOffset], params: io.params, maxTokens: B, gluStore: !!interleave });
    glu = p.gluStored;
    out.push({ label: 'ffn_gate_up_shexp', step: mm(p), w });
  } else {
    for (const [t, yOffset] of [[gate, 0], [up, s.upOffset]] as const) {
      const w = await io.upload(t);
      out.push({ label: 'ffn_gate_up_shexp', step: mm(await createMatmul(e, w, { x: io.xn, y: s.gu, yOffset, params: io.params, maxTokens: B })), w });
    }
  }
  const wDown = await io.upload(down);
  const pDown = await createMatmul(e, wDown, { x: s.gu, y: s.out, params: io.params, maxTokens: B, gluUpOffset: glu ? undefined : s.upOffset });
  const oneToken = glu || pDown.gluFused; // one token's products apply SwiGLU themselves
  const act = await createSwiglu(e, { params: io.params, gu: s.gu, upOffset: s.upOffset, ffnDim: m.sharedFf, act: 'silu' });
  const gated = await createSigmoidGateAdd(e, { params: io.params, g: io.xn, w: await io.uploadVector(gInp), y: s.out, out: io.x, dim, n: dim, maxTokens: B });
  out.push(
    {
      label: 'shexp swiglu',
      step: {
        encode(pass, n) {
          if (n > 1 || !oneToken) act.encode(pass, n);
        },
        ...flags,
      },
      w: wDown,
    },
    { label: 'ffn_down_shexp', step: mm(pDown), w: wDown },
    { label: 'shexp gate', step: { encode: (pass, n) => gated.encode(pass, n), ...flags }, w: wDown },
  );
  return out;
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
