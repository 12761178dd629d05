// Decode on CPU rasterisers as one dispatch per layer (src/gpu/chain.ts):
// the layer's products and its attention become phases of one persistent
// kernel over a private activation buffer, so a token costs 12 dispatches
// of thread hand-offs at s110m instead of ~60. Same weights and caches as
// the ordinary path; prefill keeps the ordinary path (and `bench --profile`
// shows each chained layer as one step).
import type { Config } from '../config.ts';
import { type Chain, type ChainKernel, createChain } from '../gpu/chain.ts';
import type { Engine } from '../gpu/engine.ts';
import { createGather } from '../gpu/gather.ts';
import { createMatmul, type Matmul } from '../gpu/matmul.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import { headsPerGroup, useSubgroupAttention } from './kernels.ts';
import type { Step } from './llama-parts.ts';

/** What one layer's chain needs: its weights (as uploaded for the ordinary path), norms and caches. */
export interface ChainLayer {
  qkv: GpuWeight[]; // q|k|v as the ordinary path grouped them (one weight, or two when v differs in format)
  o: GpuWeight;
  gateUp: GpuWeight[]; // one weight, its rows interleaved for the SwiGLU store
  down: GpuWeight;
  attnNorm: GPUBuffer;
  ffnNorm: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** Rotary dims of this layer: 0 where it has no RoPE (SmolLM3's every fourth layer). */
  ropeDim: number;
}

export interface LayerChains {
  /** The token's embedding row into the chain's residual (acts at 0). */
  embed: Step;
  chains: Chain[];
  /** The output head, RMSNorm on load from the chain's residual: the same kernel and input as the ordinary one-token head. */
  head: Matmul;
  /** f32: the residual [dim] at 0, then q, k, v, attention output, gate, up. */
  acts: GPUBuffer;
  claims: GPUBuffer;
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

/**
 * The q|k|v weights (one, or two when v differs in format) with the byte
 * offsets of the regions their segments fill (`regions`: q, k, v element
 * offsets) and the roles of those segments.
 */
export function qkvParts(ws: readonly GpuWeight[], regions: readonly number[]): { w: GpuWeight; offs: number[]; roles: ('q' | 'k' | 'v')[] }[] {
  const roles = ['q', 'k', 'v'] as const;
  let seg = 0;
  return ws.map((w) => {
    const n = w.segments?.length ?? 1;
    const part = { w, offs: regions.slice(seg, seg + n).map((r) => r * 4), roles: roles.slice(seg, seg + n) };
    seg += n;
    return part;
  });
}

/** One chain per layer, or undefined where some layer cannot be chained (GPU kernels, split attention, several parts…). */
export async function createLayerChains(
  e: Engine,
  c: Config,
  o: {
    layers: ChainLayer[]; embedding: GpuWeight; output: GpuWeight; outNorm: GPUBuffer; ids: GPUBuffer; logits: GPUBuffer; params: GPUBuffer; paramsOne: GPUBuffer;
    table: GPUBuffer; kvF16: boolean; split?: boolean; buffer: (label: string, bytes: number) => GPUBuffer;
  },
): Promise<LayerChains | undefined> {
  if (!e.cpuTuning || !useSubgroupAttention(e, { split: o.split, headDim: c.headDim })) return undefined;
  if (o.layers.some((L) => L.gateUp.length !== 1 || !L.gateUp[0].interleave || L.qkv.length > 2)) return undefined;
  const qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
  // Element offsets of the regions (multiples of 64: vec4-aligned for the x loads, even for attention's vec2s).
  const xO = 0, qO = align64(c.dim), kO = qO + align64(qDim), vO = kO + align64(kvDim), attO = vO + align64(kvDim);
  const gO = attO + align64(qDim), uO = gO + align64(c.ffnDim), total = uO + c.ffnDim;
  const acts = o.buffer('decode chain activations', total * 4);
  const hg = headsPerGroup(c.nHeads, c.nKvHeads);
  const phases = 5;
  const claims = o.buffer('decode chain counters', Math.max(16, o.layers.length * 2 * phases * 4));
  const base = { x: acts, y: acts, params: o.params, maxTokens: 1 };
  const chains: Chain[] = [];
  for (const [i, L] of o.layers.entries()) {
    const rope = { table: o.table, kCache: L.kCache, vCache: L.vCache, headDim: c.headDim, ropeDim: L.ropeDim, kvDim, kvF16: o.kvF16 };
    const qkv: ChainKernel[] = qkvParts(L.qkv, [qO, kO, vO]).map(({ w, offs, roles }) => {
      const io = { ...base, xOffset: xO * 4, yOffset: offs[0], yOffsets: offs, norm: { x: acts, w: L.attnNorm, eps: c.rmsEps }, rope: { ...rope, roles } };
      return { kind: 'matvec', w, io };
    });
    const kernels: ChainKernel[][] = [
      qkv, // RMSNorm on load; RoPE and the KV store as rows are stored
      [{ kind: 'attention', nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: o.kvF16, hg, qOff: qO, outOff: attO }],
      [{ kind: 'matvec', w: L.o, io: { ...base, xOffset: attO * 4, yOffset: xO * 4, accumulate: true } }], // x += Wo·att
      [{ kind: 'matvec', w: L.gateUp[0], io: { ...base, xOffset: xO * 4, yOffset: gO * 4, yOffsets: [gO * 4, uO * 4], norm: { x: acts, w: L.ffnNorm, eps: c.rmsEps }, gluStore: true } }],
      [{ kind: 'matvec', w: L.down, io: { ...base, xOffset: gO * 4, yOffset: xO * 4, accumulate: true } }], // x += Wdown·silu(gate)·up
    ];
    const chain = await createChain(e, { acts, params: o.params, kCache: L.kCache, vCache: L.vCache, table: o.table, claims, claimBase: i * 2 * phases }, kernels, `blk.${i}`);
    if (!chain) {
      for (const made of chains) for (const b of made.buffers) e.destroyBuffer(b);
      return undefined;
    }
    chains.push(chain);
  }
  // Both ends built at load, so a chained step records no copies: the embedding
  // row lands in the chain's residual and the head reads it from there.
  const embed = await createGather(e, o.embedding, { ids: o.ids, out: acts, params: o.params, maxTokens: 1 });
  const head = await createMatmul(e, o.output, { x: acts, y: o.logits, params: o.paramsOne, maxTokens: 1, norm: { x: acts, w: o.outNorm, eps: c.rmsEps } });
  return { embed, chains, head, acts, claims };
}
