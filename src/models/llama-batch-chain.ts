// Batched decode on CPU rasterisers as one dispatch per layer: what
// llama-chain.ts does for one token, for a step of up to S tokens, each the
// next token of its own sequence (llama-batch.ts). A batched step otherwise
// costs ~9 dispatches a layer, and on lavapipe each costs ~150 µs of thread
// hand-offs however little it computes (a 4-token RMSNorm is nearly all
// hand-off): at s110m that was a fifth of the step. The phases are the
// batched step's own kernels (the same WGSL, composed by src/gpu/chain.ts),
// so a chained step gives the same bits as the unchained one:
//   norm → q|k|v tiles → RoPE + KV store (seq table) → attention (seq table)
//   → x += Wo·att → norm → gate|up tile storing silu(gate)·up → x += Wdown·h
// over a private activation buffer with every region [S, width]. The embedding
// gather, the final norm and the head stay dispatches of their own.
import type { Config } from '../config.ts';
import { type Chain, type ChainKernel, createChain } from '../gpu/chain.ts';
import type { Engine } from '../gpu/engine.ts';
import { createGather } from '../gpu/gather.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import { createRmsnorm, headsPerGroup } from './kernels.ts';
import { type ChainLayer, qkvParts } from './llama-chain.ts';
import type { Step } from './llama-parts.ts';

export interface BatchChains {
  /** The step's tokens' embedding rows into the chains' residual rows [n, dim] at 0. */
  embed: Step;
  chains: Chain[];
  /** RMSNorm of the residual rows into xn [n, dim] (where the batched tail gathers the head's rows). */
  finalNorm: Step;
  /** u32 phase counters, cleared before each chained step. */
  claims: GPUBuffer;
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;
// Eight, and a quantize phase before each 8-bit-x tile phase (src/gpu/chain.ts).
const PHASES = 12;

/** One chain per layer for steps of up to S tokens, or undefined where a layer cannot be chained. */
export async function createBatchChains(
  e: Engine,
  c: Config,
  o: {
    S: number; layers: ChainLayer[]; embedding: GpuWeight; outNorm: GPUBuffer; ids: GPUBuffer; params: GPUBuffer; xn: GPUBuffer; seqs: GPUBuffer;
    table: GPUBuffer; kvF16: boolean; buffer: (label: string, bytes: number) => GPUBuffer;
    /** The 8-bit x records of the Q4_0 tiles (the model's, tile-matmul.ts q8xBytes). */
    q8x: GPUBuffer;
  },
): Promise<BatchChains | undefined> {
  const S = o.S;
  const qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
  // Element offsets of the regions, each S rows (multiples of 64: vec4-aligned x loads, even for RoPE's and attention's pairs).
  const xO = 0, xnO = align64(S * c.dim), qO = xnO + align64(S * c.dim), kO = qO + align64(S * qDim), vO = kO + align64(S * kvDim);
  const attO = vO + align64(S * kvDim), gO = attO + align64(S * qDim), uO = gO + align64(S * c.ffnDim), total = uO + S * c.ffnDim;
  const acts = o.buffer('batch chain activations', total * 4);
  const claims = o.buffer('batch chain counters', o.layers.length * 2 * PHASES * 4);
  const base = { x: acts, y: acts, params: o.params, maxTokens: S };
  const norm = (w: GPUBuffer): ChainKernel => ({ kind: 'norm', w, eps: c.rmsEps, dim: c.dim, xOff: xO, yOff: xnO, tokens: S });
  const chains: Chain[] = [];
  for (const [i, L] of o.layers.entries()) {
    const qkv: ChainKernel[] = qkvParts(L.qkv, [qO, kO, vO]).map(({ w, offs }) => ({ kind: 'tile', w, tokens: S, io: { ...base, xOffset: xnO * 4, yOffset: offs[0], yOffsets: offs } }));
    const phases: ChainKernel[][] = [
      [norm(L.attnNorm)],
      qkv,
      [{ kind: 'rope', nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, ropeDim: L.ropeDim, kvF16: o.kvF16, qOff: qO, kOff: kO, vOff: vO, tokens: S }],
      [{ kind: 'attention', nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: o.kvF16, hg: headsPerGroup(c.nHeads, c.nKvHeads), qOff: qO, outOff: attO, tokens: S }],
      [{ kind: 'tile', w: L.o, tokens: S, io: { ...base, xOffset: attO * 4, yOffset: xO * 4, accumulate: true } }], // x += Wo·att
      [norm(L.ffnNorm)],
      [{ kind: 'tile', w: L.gateUp[0], tokens: S, io: { ...base, xOffset: xnO * 4, yOffset: gO * 4, yOffsets: [gO * 4, uO * 4], gluStore: true } }],
      [{ kind: 'tile', w: L.down, tokens: S, io: { ...base, xOffset: gO * 4, yOffset: xO * 4, accumulate: true } }], // x += Wdown·silu(gate)·up
    ];
    const chain = await createChain(e, { acts, params: o.params, kCache: L.kCache, vCache: L.vCache, table: o.table, claims, claimBase: i * 2 * PHASES, maxPhases: PHASES, seqs: o.seqs, q8x: o.q8x }, phases, `blk.${i} batch`);
    if (!chain) {
      for (const made of chains) for (const b of made.buffers) e.destroyBuffer(b);
      return undefined;
    }
    chains.push(chain);
  }
  const embed = await createGather(e, o.embedding, { ids: o.ids, out: acts, params: o.params, maxTokens: S });
  const finalNorm = await createRmsnorm(e, { params: o.params, x: acts, w: o.outNorm, y: o.xn, dim: c.dim, eps: c.rmsEps });
  return { embed, chains, finalNorm, claims };
}
