// Expert products of a MoE layer on a 3-D expert weight [experts, rows, cols]
// (uploadTensor splits it by whole experts, weights.ts), reading the experts
// and weights the router wrote on the GPU (router.ts). Three kernels:
// - moe_matvec(_split).wgsl, for one token (decode): per (token, slot) the
//   chosen expert's rows only; with `combine`, the weighted sum over the k
//   slots is fused and added straight into the destination (the residual).
// - moe_matmul.wgsl, for several tokens (prefill): the router's tiles of
//   pairs grouped by expert, so each expert's rows are dequantized once per
//   T pairs (the matmul's token tile) instead of once per token; writes each
//   pair's row.
// - moe_combine.wgsl: out[t] (+)= Σ_s w_ts · y[t, s] after the matmul.
// A layer (qwen3moe, Mixtral, OLMoE shapes; gpt-oss adds biases and its own
// activation) runs, per step of nTokens:
//   logits = gate_inp · xn                       createMatmul (an ordinary product)
//   router.encode                                createRouter (router.ts)
//   gate.encode, up.encode → gu [nTokens, k, ff]  createMoeProduct, pairs out
//   swiglu over nTokens·k·ff values              the existing swiglu kernel
//   down.encode → x += Σ_s w·down_e(h)           createMoeProduct with combine
import { GpuError } from '../errors.ts';
import type { Engine } from './engine.ts';
import { decodeSide, partInfo, split2 } from './matmul.ts';
import { MOE_TILE, maxTiles, type RoutesLayout } from './router.ts';
import type { GpuWeight } from './weights.ts';

export interface MoeProductIO {
  /** f32 input: [maxTokens, cols] (every slot reads its token's row: gate, up) or, with xPerPair, [maxTokens, k, cols] (down). */
  x: GPUBuffer;
  /** Byte offset of x (a multiple of 4; of 16 for vector loads). */
  xOffset?: number;
  xPerPair?: boolean;
  /** f32 [maxTokens, k, rows]: each (token, slot) pair's product (for `combine`, the prefill scratch). */
  y: GPUBuffer;
  yOffset?: number;
  /** The router's output and its layout (router.ts createRouter). */
  routes: GPUBuffer;
  layout: RoutesLayout;
  /** Uniform; u32 at byte 0 = nTokens (the combine kernel reads it). */
  params: GPUBuffer;
  /**
   * The weighted sum over the k slots into `out` [maxTokens, rows] (ffn_down):
   * fused into the decode matvec, a moe_combine dispatch after the prefill
   * matmul. accumulate: out += (the residual add), else out =.
   */
  combine?: { out: GPUBuffer; outOffset?: number; accumulate?: boolean };
  /** Tokens up to this many take the matvec (default 1); more take the grouped matmul. */
  matvecMaxTokens?: number;
}

export interface MoeProduct {
  encode(pass: GPUComputePassEncoder, nTokens: number): void;
}

/** One expert product of w for up to layout.maxTokens tokens: the matvec for few tokens, the grouped matmul (and combine) for more. */
export async function createMoeProduct(engine: Engine, w: GpuWeight, io: MoeProductIO): Promise<MoeProduct> {
  const L = io.layout;
  const E = w.experts ?? 0;
  const rows = w.expertRows ?? 0;
  if (!E) throw new GpuError(`MoE product ${w.name}: the weight is not a 3-D expert tensor`);
  if (E !== L.nExperts) throw new GpuError(`MoE product ${w.name}: ${E} experts, but the router chooses among ${L.nExperts}`);
  const xOff = io.xOffset ?? 0;
  const yOff = io.yOffset ?? 0;
  const cmb = io.combine;
  const outOff = cmb?.outOffset ?? 0;
  if (xOff % 4 || yOff % 4 || outOff % 4) throw new GpuError(`MoE product ${w.name}: offsets must be multiples of 4 bytes`);
  const xRows = io.xPerPair ? L.m : L.maxTokens;
  if (io.x.size < xOff + xRows * w.cols * 4) throw new GpuError(`MoE product ${w.name}: x buffer (${io.x.size} B) is smaller than ${xRows} × ${w.cols} f32 at offset ${xOff}`);
  if (io.y.size < yOff + L.m * rows * 4) throw new GpuError(`MoE product ${w.name}: y buffer (${io.y.size} B) is smaller than ${L.maxTokens} × ${L.k} × ${rows} f32 at offset ${yOff}`);
  if (cmb && cmb.out.size < outOff + L.maxTokens * rows * 4) throw new GpuError(`MoE product ${w.name}: out buffer (${cmb.out.size} B) is smaller than ${L.maxTokens} × ${rows} f32 at offset ${outOff}`);
  if (io.routes.size < L.words * 4) throw new GpuError(`MoE product ${w.name}: routes buffer (${io.routes.size} B) is smaller than its layout (${L.words} words)`);
  if (io.x === io.y || io.x === cmb?.out || io.y === cmb?.out) throw new GpuError(`MoE product ${w.name}: x, y and out must be separate buffers (WebGPU binds a written buffer once)`);
  const mvMax = io.matvecMaxTokens ?? 1;

  // The same tunables, dequant snippet and x loads as the dense products (matmul.ts).
  const d = decodeSide(engine, w, { x: io.x, y: io.y, params: io.params, maxTokens: L.maxTokens }, xOff, 1);
  const { sub, xvec, tun, snippet, enables } = d;
  const moeWgsl = engine.shader('moe_common', { K: L.k });
  const xs = engine.shader(sub ? 'dequant_xs_subgroup' : 'dequant_xs_plain');
  const common = { format: snippet, f16: engine.f16, sub, xvec, mask: d.mask, k: L.k };
  const mvCode = (sum: boolean) =>
    tun.mvSplit
      ? engine.shader('moe_matvec_split', { ENABLES: enables, DEQUANT: d.dequant, XLOAD: d.plain, XS: engine.shader('dequant_xs_plain'), MOE: moeWgsl, SUM: String(sum) })
      : engine.shader('moe_matvec', { ENABLES: enables, DEQUANT: d.dequant, XLOAD: d.plain, XS: xs, MOE: moeWgsl, R: tun.mvRows, SUM: String(sum), ...d.lane });
  const sum = !!cmb;
  // The router's tiles of MOE_TILE pairs are cut into sub-tiles of the matmul's T tokens.
  if (MOE_TILE % tun.mmTokens) throw new GpuError(`internal error: MoE tiles of ${MOE_TILE} pairs do not split into ${tun.mmTokens}-token tiles`);
  const sub16 = MOE_TILE / tun.mmTokens;
  const [mv, mm, comb] = await Promise.all([
    engine.pipeline({ ...common, kind: tun.mvSplit ? 'moe_matvec_split' : 'moe_matvec', rows: tun.mvRows, wg: tun.mvWg, sum }, mvCode(sum), { WG: tun.mvWg }),
    engine.pipeline(
      { ...common, kind: 'moe_matmul', tokens: tun.mmTokens, rows: tun.mmRows, wg: tun.mmWg },
      engine.shader('moe_matmul', { ENABLES: enables, DEQUANT: d.dequant, XLOAD: d.plain, XS: xs, MOE: moeWgsl, T: tun.mmTokens, RM: tun.mmRows, SUB: sub16, ...d.lane }),
      { WG: tun.mmWg },
    ),
    cmb ? createCombine(engine, io, rows, outOff) : undefined,
  ]);
  const mvRowsPerGroup = tun.mvSplit ? 32 : tun.mvRows * tun.mvWg;
  const xTok = io.xPerPair ? L.k * w.cols : w.cols;
  const xSlot = io.xPerPair ? w.cols : 0;
  const parts = w.parts.map((p, i) => {
    const info = partInfo(engine, w, p, xOff / 4, [0], `${w.name}.moe.info[${i}]`);
    const moe = (y: number, acc: boolean) => {
      const b = engine.createBuffer('other', `${w.name}.moe[${i}]`, 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      engine.device.queue.writeBuffer(b, 0, new Uint32Array([rows, p.firstRow / rows, p.rows / rows, xTok, xSlot, y, acc ? 1 : 0, L.m]));
      return b;
    };
    const bg = (pipe: GPUComputePipeline, y: GPUBuffer, m: GPUBuffer, label: string) =>
      engine.device.createBindGroup({
        label,
        layout: pipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: p.buffer } },
          { binding: 1, resource: { buffer: io.x } },
          { binding: 2, resource: { buffer: y } },
          { binding: 3, resource: { buffer: info } },
          { binding: 5, resource: { buffer: m } },
          { binding: 6, resource: { buffer: io.routes } },
        ],
      });
    // Pairs: each pair is written by the part that holds its expert. Fused
    // sum: the first part writes (or adds, with accumulate) and the others add.
    const mvBg = cmb
      ? bg(mv, cmb.out, moe(outOff / 4, i > 0 || !!cmb.accumulate), `${w.name}.moe_matvec[${i}]`)
      : bg(mv, io.y, moe(yOff / 4, false), `${w.name}.moe_matvec[${i}]`);
    const mmBg = bg(mm, io.y, moe(yOff / 4, false), `${w.name}.moe_matmul[${i}]`);
    return { mvBg, mmBg, mvGroups: split2(engine, Math.ceil(rows / mvRowsPerGroup)), mmGroups: split2(engine, Math.ceil(rows / (tun.mmRows * tun.mmWg))) };
  });
  return {
    encode(pass, nTokens) {
      if (!(nTokens >= 1 && nTokens <= L.maxTokens)) throw new GpuError(`MoE product ${w.name}: nTokens ${nTokens} is outside 1..${L.maxTokens}`);
      if (nTokens <= mvMax || nTokens === 1) {
        pass.setPipeline(mv);
        for (const p of parts) {
          pass.setBindGroup(0, p.mvBg);
          pass.dispatchWorkgroups(p.mvGroups[0], cmb ? nTokens : nTokens * L.k, p.mvGroups[1]);
        }
        return;
      }
      // The router grouped the pairs (it does for nTokens >= 2).
      pass.setPipeline(mm);
      const tiles = maxTiles(nTokens * L.k, L.nExperts) * sub16;
      for (const p of parts) {
        pass.setBindGroup(0, p.mmBg);
        pass.dispatchWorkgroups(p.mmGroups[0], tiles, p.mmGroups[1]);
      }
      comb?.encode(pass, nTokens);
    },
  };
}

/** out[t, :] (+)= Σ_s w_ts · y[t, s, :] for t < nTokens (moe_combine.wgsl); y rows of `rows` floats. */
async function createCombine(engine: Engine, io: MoeProductIO, rows: number, outOff: number): Promise<MoeProduct> {
  const cmb = io.combine!;
  const L = io.layout;
  const WG = 64;
  const consts = { WG, N: rows, M: L.m, Y_OFF: (io.yOffset ?? 0) / 4, OUT_OFF: outOff / 4, ACC: cmb.accumulate ? 1 : 0 };
  const pipe = await engine.pipeline({ kind: 'moe_combine', k: L.k, ...consts }, engine.shader('moe_combine', { K: L.k }), consts);
  const bg = engine.device.createBindGroup({
    label: 'moe combine',
    layout: pipe.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: io.params } },
      { binding: 1, resource: { buffer: io.routes } },
      { binding: 2, resource: { buffer: io.y } },
      { binding: 3, resource: { buffer: cmb.out } },
    ],
  });
  return {
    encode(pass, nTokens) {
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      const [gx, gy] = split2(engine, Math.ceil((nTokens * rows) / WG));
      pass.dispatchWorkgroups(gx, gy);
    },
  };
}

/**
 * out[t, :] += σ(w · g[t]) · y[t, :] for t < nTokens (sigmoid_gate_add.wgsl):
 * g f32 [maxTokens, dim], w f32 [dim], y and out f32 [maxTokens, n]. Qwen2-MoE's
 * shared expert joining the residual, its gate computed on the GPU (no readback).
 */
export async function createSigmoidGateAdd(engine: Engine, o: { params: GPUBuffer; g: GPUBuffer; w: GPUBuffer; y: GPUBuffer; out: GPUBuffer; dim: number; n: number; maxTokens: number }): Promise<MoeProduct> {
  if (o.w.size < o.dim * 4 || o.g.size < o.maxTokens * o.dim * 4) throw new GpuError(`sigmoid gate: w or g is smaller than [${o.maxTokens}, ${o.dim}] f32`);
  if (o.y.size < o.maxTokens * o.n * 4 || o.out.size < o.maxTokens * o.n * 4) throw new GpuError(`sigmoid gate: y or out is smaller than [${o.maxTokens}, ${o.n}] f32`);
  if (o.y === o.out || o.g === o.out || o.w === o.out) throw new GpuError('sigmoid gate: out must be a buffer of its own (WebGPU binds a written buffer once)');
  // Narrow groups on CPU rasterisers, as rmsnorm (barriers are coroutine switches there).
  const WG = engine.cpuTuning ? 8 : 64;
  const consts = { DIM: o.dim, N: o.n, WG };
  const pipe = await engine.pipeline({ op: 'sigmoid_gate_add', ...consts }, engine.shader('sigmoid_gate_add', { WG_SUM: engine.shader('wg_sum') }), consts);
  const bg = engine.device.createBindGroup({
    label: 'sigmoid gate add',
    layout: pipe.getBindGroupLayout(0),
    entries: [o.params, o.g, o.w, o.y, o.out].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return {
    encode(pass, nTokens) {
      if (!(nTokens >= 1 && nTokens <= o.maxTokens)) throw new GpuError(`sigmoid gate: nTokens ${nTokens} is outside 1..${o.maxTokens}`);
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(nTokens);
    },
  };
}
