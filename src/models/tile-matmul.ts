// The product kernel of a batched decode step (llama-batch.ts): the prefill
// matmul's loop (matmul_generic.wgsl with STORE) with a token
// tile of the step's size instead of prefill's 16. The prefill kernel always
// computes a whole tile (tokens past the batch repeat the last one), so a
// 4-token step through a 16-token tile paid for 16; on lavapipe that made a
// step of 4 sequences cost ~4× a one-token step instead of ~2×. Of one
// token's fusions it keeps the SwiGLU store of an interleaved gate|up
// (MatmulIO.gluStore: then the swiglu dispatch is skipped; a 4-sequence step
// of s110m measured 1-5% faster). RMSNorm on load it leaves out: every row
// group would norm every token's x again, and that measured 8-15% slower
// than the norm's own dispatch. Same weights and Info layout as createMatmul's
// kernels; per token it adds the same partial sums in the same order as the
// prefill matmul, except Q4_0 (with subgroups, up to 8 tokens), whose tile
// quantizes x to 8 bits per block as llama.cpp's CPU backend does
// (matmul_q4_0_q8.wgsl: two tokens per integer multiply; on lavapipe a
// 4-token step of s110m Q4_0 measured ~20% faster, docs/PERFORMANCE.md).
import type { Config } from '../config.ts';
import { GpuError } from '../errors.ts';
import type { Engine } from '../gpu/engine.ts';
import { decodeSide, type MatmulIO, partInfo, rawDeq, split2 } from '../gpu/matmul.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import type { Step } from './llama-parts.ts';

export interface TileMatmul extends Step {
  readonly label: string;
  /** It stores silu(gate)·up (the caller skips the swiglu). */
  readonly gluStored: boolean;
  /** Its Info uniforms (the owner destroys them). */
  readonly buffers: GPUBuffer[];
}

/**
 * Rows per lane of a tile: the prefill matmul's; with the SwiGLU store a
 * multiple of the rows the matvec's interleave pairs (mvRows); the 8-bit-x
 * kernel on CPU rasterisers 8 (at s110m's shapes 8 rows took 0.66-0.78× the
 * f32 tile's time, 4 rows 0.87×: more rows per shared word).
 */
export function tileRows(d: ReturnType<typeof decodeSide>, x8 = false): number {
  if (x8 && d.tun.mmWg === 8) return 8;
  return d.gluStore ? d.tun.mvRows : d.tun.mmRows;
}

/** Tokens a tile of T takes: matmul_q4_0_q8.wgsl's pairs round T up to even (x8: that kernel). */
export function tileTokens(d: ReturnType<typeof decodeSide>, T: number): { T: number; x8: boolean } {
  // The 8-bit x path shares x across subgroups of >= 8 lanes and keeps a tile's words in registers up to 8 tokens.
  const x8 = d.snippet === 'q4_0' && d.sub && d.xvec && !d.mask && T <= 8;
  return { T: x8 ? T + (T & 1) : T, x8 };
}

/** The tile kernel for T tokens (tileTokens) × R rows per lane (no entry point: matmul_main.wgsl, or a batched chain's). */
export function tileCode(engine: Engine, d: ReturnType<typeof decodeSide>, T: number, R: number, enables = d.enables): string {
  const k = tileTokens(d, T);
  const store = d.gluStore ? engine.shader('store_tile_glu', { GR: d.tun.mvRows / 2 }) : engine.shader('store_tile');
  const common = { ENABLES: enables, DEQUANT: `${d.dequant}\n${engine.shader('product_store')}`, STORE: store, T: k.T, RM: R };
  return k.x8 ? engine.shader('matmul_q4_0_q8', common) : engine.shader('matmul_generic', { ...common, XLOAD: d.plain, XS: d.xs, ...rawDeq(d.dequant) });
}

/** Bytes of quantize_q8x.wgsl's records for `tokens` tokens (in pairs) of `cols`. */
export const q8xBytes = (tokens: number, cols: number) => Math.ceil(tokens / 2) * (cols / 32) * 9 * 16;

/** A model's one record buffer for its tiles of S tokens: the widest product input (dim, heads·headDim, ffn). */
export const modelQ8xBytes = (c: Config, S: number) => q8xBytes(S, Math.max(c.dim, c.nHeads * c.headDim, c.ffnDim));

/**
 * y (+)= W·x for up to `tokens` tokens per tile; io as for createMatmul (x is
 * io.x: the norm, RoPE and SwiGLU-on-load are not applied). `records`: where
 * an 8-bit-x tile quantizes x (shared by a model's tiles, which run one after
 * another; then one tile per dispatch), else a buffer of its own for io.maxTokens.
 */
export async function createTileMatmul(engine: Engine, w: GpuWeight, io: MatmulIO, tokens: number, records?: GPUBuffer): Promise<TileMatmul> {
  const xOffset = io.xOffset ?? 0;
  const yOffsets = io.yOffsets ?? [io.yOffset ?? 0];
  const segs = w.segments ?? [w.rows];
  // decodeSide decides the gate|up store as for one token's matvec: it needs the interleave made for the matvec's rows per lane, which the tile then uses.
  const d = decodeSide(engine, w, { ...io, norm: undefined, rope: undefined, gluUpOffset: undefined }, xOffset, segs.length);
  // Without the fast x path prefill keeps 2-token tiles (a wider one costs LLVM seconds to compile): never wider than prefill's.
  const { T, x8 } = tileTokens(d, Math.max(1, Math.min(tokens, d.tun.mmTokens)));
  const R = tileRows(d, x8);
  const code = `${tileCode(engine, d, T, R)}\n${engine.shader('matmul_main', d.lane)}`;
  const key = { kind: 'matmul_tile', format: d.snippet, f16: engine.f16, sub: d.sub, xvec: d.xvec, mask: d.mask, tokens: T, rows: R, wg: d.tun.mmWg, glu: d.gluStore, x8 };
  const pipeline = await engine.pipeline(key, code, { WG: d.tun.mmWg });
  const buffers: GPUBuffer[] = [];
  // The 8-bit x: quantized into its own records first, one workgroup of 8 lanes a record.
  const quant = x8 ? await createQuantize(engine, io, xOffset, w.cols, T, `${w.name}.tile`, records) : undefined;
  if (quant && !records) buffers.push(quant.records);
  const parts = w.parts.map((p, i) => {
    const info = partInfo(engine, w, p, xOffset / 4, yOffsets.map((o) => o / 4), `${w.name}.tile.info[${i}]`, !!io.accumulate);
    buffers.push(info);
    const bindGroup = engine.device.createBindGroup({
      label: `${w.name}.tile[${i}]`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: p.buffer } },
        quant ? { binding: 5, resource: { buffer: quant.records } } : { binding: 1, resource: { buffer: io.x } },
        { binding: 2, resource: { buffer: io.y } },
        { binding: 3, resource: { buffer: info } },
        { binding: 4, resource: { buffer: io.params } },
      ],
    });
    return { bindGroup, groups: split2(engine, Math.ceil(p.rows / (R * d.tun.mmWg))) };
  });
  return {
    label: 'matmul (batched decode)',
    gluStored: d.gluStore,
    buffers,
    encode(pass, nTokens) {
      const ty = Math.ceil(nTokens / T);
      if (quant && records && ty > 1) throw new GpuError(`internal error: ${w.name}'s tile shares its 8-bit x records for ${T} tokens, got ${nTokens}`);
      quant?.encode(pass, ty * (T / 2));
      pass.setPipeline(pipeline);
      for (const p of parts) {
        pass.setBindGroup(0, p.bindGroup);
        pass.dispatchWorkgroups(p.groups[0], ty, p.groups[1]);
      }
    },
  };
}

/** quantize_q8x.wgsl as a dispatch of its own: x (io.x at xOffset bytes, rows of `cols`) into `records`, up to maxTokens rounded up to tiles of T. */
async function createQuantize(engine: Engine, io: MatmulIO, xOffset: number, cols: number, T: number, label: string, shared?: GPUBuffer) {
  const main = '@compute @workgroup_size(8)\nfn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) { quantize_q8x(wid.x, lane); }';
  const pipeline = await engine.pipeline({ kind: 'quantize_q8x', xOff: xOffset / 4, cols }, `enable subgroups;\n${engine.shader('quantize_q8x')}\n${main}`, { X_OFF: xOffset / 4, COLS: cols });
  if (shared && shared.size < q8xBytes(T, cols)) throw new GpuError(`internal error: ${label}'s shared 8-bit x records (${shared.size} B) are smaller than ${T} tokens of ${cols}`);
  const records = shared ?? engine.createBuffer('activations', `${label}.q8x`, q8xBytes(Math.ceil(io.maxTokens / T) * T, cols), GPUBufferUsage.STORAGE);
  const bindGroup = engine.device.createBindGroup({
    label: `${label}.q8x`,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 1, resource: { buffer: io.x } },
      { binding: 4, resource: { buffer: io.params } },
      { binding: 5, resource: { buffer: records } },
    ],
  });
  return {
    records,
    /** Quantizes `pairs` token pairs (the tiles' tokens; those past nTokens repeat the last). */
    encode(pass: GPUComputePassEncoder, pairs: number) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(pairs * (cols / 32));
    },
  };
}
