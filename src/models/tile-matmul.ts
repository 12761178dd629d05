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
// prefill matmul.
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

/** Rows per lane of a tile: the SwiGLU store pairs rows as the matvec's interleave made them (mvRows), else the prefill matmul's. */
export const tileRows = (d: ReturnType<typeof decodeSide>): number => (d.gluStore ? d.tun.mvRows : d.tun.mmRows);

/** matmul_generic.wgsl for a batched decode step's tile of T tokens × R rows per lane (no entry point: matmul_main.wgsl, or a batched chain's). */
export function tileCode(engine: Engine, d: ReturnType<typeof decodeSide>, T: number, R: number, enables = d.enables): string {
  return engine.shader('matmul_generic', {
    ENABLES: enables, DEQUANT: `${d.dequant}\n${engine.shader('product_store')}`, XLOAD: d.plain, XS: d.xs,
    STORE: engine.shader(d.gluStore ? 'store_tile_glu' : 'store_tile'), T, RM: R, ...rawDeq(d.dequant),
  });
}

/** y (+)= W·x for up to `tokens` tokens per tile; io as for createMatmul (x is io.x: the norm, RoPE and SwiGLU-on-load are not applied). */
export async function createTileMatmul(engine: Engine, w: GpuWeight, io: MatmulIO, tokens: number): Promise<TileMatmul> {
  const xOffset = io.xOffset ?? 0;
  const yOffsets = io.yOffsets ?? [io.yOffset ?? 0];
  const segs = w.segments ?? [w.rows];
  // decodeSide decides the gate|up store as for one token's matvec: it needs the interleave made for the matvec's rows per lane, which the tile then uses.
  const d = decodeSide(engine, w, { ...io, norm: undefined, rope: undefined, gluUpOffset: undefined }, xOffset, segs.length);
  const R = tileRows(d);
  // Without the fast x path prefill keeps 2-token tiles (a wider one costs LLVM seconds to compile): never wider than prefill's.
  const T = Math.max(1, Math.min(tokens, d.tun.mmTokens));
  const code = `${tileCode(engine, d, T, R)}\n${engine.shader('matmul_main', d.lane)}`;
  const key = { kind: 'matmul_tile', format: d.snippet, f16: engine.f16, sub: d.sub, xvec: d.xvec, mask: d.mask, tokens: T, rows: R, wg: d.tun.mmWg, glu: d.gluStore };
  const pipeline = await engine.pipeline(key, code, { WG: d.tun.mmWg });
  const buffers: GPUBuffer[] = [];
  const parts = w.parts.map((p, i) => {
    const info = partInfo(engine, w, p, xOffset / 4, yOffsets.map((o) => o / 4), `${w.name}.tile.info[${i}]`, !!io.accumulate);
    buffers.push(info);
    const bindGroup = engine.device.createBindGroup({
      label: `${w.name}.tile[${i}]`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: p.buffer } },
        { binding: 1, resource: { buffer: io.x } },
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
      pass.setPipeline(pipeline);
      const ty = Math.ceil(nTokens / T);
      for (const p of parts) {
        pass.setBindGroup(0, p.bindGroup);
        pass.dispatchWorkgroups(p.groups[0], ty, p.groups[1]);
      }
    },
  };
}
