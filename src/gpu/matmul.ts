// y = W·x for a GPU weight in any supported format: a matrix×vector kernel
// for one token (decode) and a token-tiled matrix×matrix kernel (prefill).
// Pipelines, uniform buffers and bind groups are built here at load time;
// encode() only records dispatches.
import { GpuError } from '../errors.ts';
import type { Engine } from './engine.ts';
import { dPlaneWord, gpuFormat } from './formats.ts';
import type { GpuWeight } from './weights.ts';
import { type GgmlType, typeInfo } from '../quant/table.ts';

export interface MatmulIO {
  /** f32 [nTokens, cols], row-major. Byte offset must be a multiple of 4. */
  x: GPUBuffer;
  xOffset?: number;
  /** f32 [nTokens, rows]. */
  y: GPUBuffer;
  yOffset?: number;
  /**
   * For a weight made of concatenated tensors (GpuWeight.segments): the byte
   * offset in y of each tensor's own [nTokens, rows] region (the first is yOffset).
   */
  yOffsets?: number[];
  /** Uniform; u32 at byte 0 = nTokens for this dispatch (the caller writes it each step). */
  params: GPUBuffer;
  maxTokens: number;
  /** y += W·x instead of y = W·x. */
  accumulate?: boolean;
  /**
   * SwiGLU fused into the x load (ffn_down in decode): x holds gate and, this
   * many bytes later, up; one token's matvec then reads silu(gate)·up and the
   * separate swiglu dispatch can be skipped (Matmul.gluFused). Several tokens
   * (the matmul) still read x as it is.
   */
  gluUpOffset?: number;
  /**
   * RMSNorm fused into the x load (a product after a norm, in decode): one
   * token's matvec reads `x` here, the un-normed row (offset xOffset), and
   * normalises it with weight `w` (f32 [cols]) and `eps` itself, so the
   * separate rmsnorm dispatch can be skipped (Matmul.normFused). Several
   * tokens (the matmul) read io.x, the normed rows, as usual.
   */
  norm?: { x: GPUBuffer; w: GPUBuffer; eps: number };
  /**
   * RoPE and the KV-cache store fused into the output of one token's matvec
   * (the q|k|v products in decode; shaders/store_rope_kv.wgsl): `roles` says
   * what each output region holds (q rows are rotated into y, k rows rotated
   * and v rows copied into the caches at slot pos, read from `params`).
   * Applied when Matmul.ropeFused; the matmul (prefill) writes y as usual.
   */
  rope?: { roles: ('q' | 'k' | 'v')[]; table: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer; headDim: number; ropeDim: number; kvDim: number; kvF16: boolean };
  /**
   * gate|up uploaded interleaved in blocks of gluInterleave() rows: one
   * token's matvec stores silu(gate)·up into the gate region (Matmul.gluStored),
   * so the swiglu dispatch can be skipped; the matmul writes both regions.
   */
  gluStore?: boolean;
}

export interface Matmul {
  encode(pass: GPUComputePassEncoder, nTokens: number): void;
  /** True when one token's matvec applies SwiGLU on load (gluUpOffset given, GPU tuning, x loaded as vec4s). */
  readonly gluFused: boolean;
  /** True when one token's matvec applies RMSNorm on load (MatmulIO.norm given, x loaded as vec4s). */
  readonly normFused: boolean;
  /** True when one token's matvec does RoPE and the KV store itself (MatmulIO.rope given, subgroups). */
  readonly ropeFused: boolean;
  /** True when one token's matvec stores silu(gate)·up (MatmulIO.gluStore with a weight interleaved as gluInterleave() says). */
  readonly gluStored: boolean;
}

/** Kernel tunables, chosen per adapter (see shared notes: lavapipe wants few lanes, many rows each). */
export interface Tunables {
  /** matvec: rows per invocation, workgroup size. */
  mvRows: number;
  mvWg: number;
  /** matvec_split.wgsl (GPUs): 32 rows per workgroup, the row length split over mvWg/32 slices. */
  mvSplit: boolean;
  /** matmul: tokens per tile, rows per invocation, workgroup size. */
  mmTokens: number;
  mmRows: number;
  mmWg: number;
}

export function tunables(engine: Engine, sub = useSubgroups(engine), xvec = true, perElement = false, snippet = ''): Tunables {
  // Without subgroups (or with scalar x loads) every lane issues 8-32 loads of
  // x per token and chunk; on lavapipe a tile of 8 tokens then costs LLVM ~15 s
  // to compile (4: 5 s, 2: 1.8 s), so those paths keep the tile at 2.
  // Rows per invocation: 2 measured 1.0-1.9x faster than 4 for Q8_0/Q4_K/Q6_K
  // here (K-quants carry more registers per row); noisy for Q4_0 (±25%).
  // Per-element float rows (cols % 32 != 0, rare: F16 ffn_down of toy models)
  // are likewise kept to one row per invocation.
  // Q4_0 (tiled 32 rows, see formats.ts): 4 rows × 8 lanes = one tile per
  // workgroup measured 1.2-1.5x over 2 rows; Q8_0 stays at 2 (twice the loads per row).
  // Q4_K's block matvec (matvec_q4_k.wgsl): 4 rows 1.1-1.3x over 2 at the
  // TinyLlama shapes; Q6_K's (more live registers per row) is faster at 2.
  const four = sub && xvec && (snippet === 'q4_0' || snippet === 'q4_k');
  // Prefill tile on lavapipe (2048x5632 Q4_0, 64 tokens; T tokens x R rows):
  // 8x1 64 ms, 8x2 40, 8x4 34, 16x4 28.5, 32x4 27.4, 8x8 55 (spills).
  // Sharing a chunk of x costs about what 32 multiply-adds do, so R rows per
  // share is what pays; 16 tokens keep short prompts from padding a big tile.
  const fast = sub && xvec && !perElement;
  if (engine.cpuTuning) return { mvRows: perElement ? 1 : four ? 4 : 2, mvWg: 8, mvSplit: false, mmTokens: fast ? 16 : 2, mmRows: fast ? 4 : 1, mmWg: 8 };
  // GPUs: decode needs many threads per row to fill the machine (a 2048-row
  // matrix is only 2048 rows); 8 slices of the row length per 32 rows.
  // Not yet measured on a real GPU (none was lent); see docs/PERFORMANCE.md.
  return { mvRows: 1, mvWg: 256, mvSplit: true, mmTokens: 8, mmRows: 1, mmWg: 64 };
}

/**
 * Rows per block for uploading gate|up interleaved so that one token's matvec
 * can store silu(gate)·up (store_glu.wgsl): half a workgroup's rows, when the
 * CPU kernels run the weight with an even number of rows per lane; 0 when
 * they do not (GPUs' matvec_split keeps a row per lane and SwiGLU on load).
 */
export function gluInterleave(engine: Engine, type: GgmlType, cols: number): number {
  const fmt = gpuFormat(typeInfo(type)!);
  const perElement = fmt.kind !== 'blocks' && cols % 32 !== 0;
  const tun = tunables(engine, useSubgroups(engine), cols % 4 === 0, perElement, fmt.snippet);
  return engine.cpuTuning && !tun.mvSplit && tun.mvRows % 2 === 0 ? (tun.mvRows * tun.mvWg) / 2 : 0;
}

/** Subgroup x-sharing needs subgroups of at least 8 lanes. */
export function useSubgroups(engine: Engine): boolean {
  return engine.subgroups && engine.adapter.subgroupMinSize >= 8;
}

/** The WGSL shared by the matvec/matmul/gather templates: enables + dequant snippet. */
export function kernelParts(engine: Engine, w: GpuWeight, sub: boolean) {
  const fmt = gpuFormat(w.type, w.name);
  const enables = [engine.f16 ? 'enable f16;' : '', sub ? 'enable subgroups;' : ''].join(' ');
  // Float rows that are not a whole number of 32-element chunks take the
  // per-element variant; the aligned one reads vec4s.
  const snippet = fmt.kind !== 'blocks' && w.cols % 32 !== 0 ? `${fmt.snippet}_any` : fmt.snippet;
  const tiled = fmt.tile ? `\n${engine.shader('dequant_tiled')}` : '';
  const dequant = `${engine.shader('dequant_common')}\n${engine.shader(engine.f16 ? 'dequant_h2_f16' : 'dequant_h2_f32')}\n${engine.shader(`dequant_${snippet}`)}${tiled}`;
  return { fmt, snippet, enables, dequant };
}

/** A 64-byte uniform with the Info struct of dequant_common.wgsl for one part; yOffs: element offsets per segment; acc: y += instead of y =. */
export function partInfo(engine: Engine, w: GpuWeight, part: GpuWeight['parts'][number], xOff: number, yOffs: number[], label: string, acc = false): GPUBuffer {
  const fmt = gpuFormat(w.type);
  const seg = w.segments ?? [w.rows];
  const seg1 = seg.length > 1 ? seg[0] : w.rows;
  const seg2 = seg.length > 2 ? seg[0] + seg[1] : w.rows;
  const info = new Uint32Array([
    part.rows, w.rows, part.firstRow, xOff, yOffs[0], fmt.dOffset >= 0 ? dPlaneWord(w.type, part.rows, w.cols) : 0, w.cols, Math.ceil(w.cols / 32),
    seg1, seg2, yOffs[1] ?? 0, yOffs[2] ?? 0, acc ? 1 : 0, w.interleave ?? 0, 0, 0,
  ]);
  const b = engine.createBuffer('other', label, info.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(b, 0, info);
  return b;
}

/** matmul_generic.wgsl's DEQ and SCALE: the snippet's unscaled chunk and its scale where it has them (q4_0, q8_0), else the scaled chunk and 1. */
export function rawDeq(dequant: string): { DEQ: string; SCALE: string } {
  return /\bfn deq_raw\(/.test(dequant) ? { DEQ: 'deq_raw', SCALE: 'deq_scale' } : { DEQ: 'deq_chunk', SCALE: 'deq_one' };
}

/** Splits a workgroup count over two dimensions when it exceeds the per-dimension limit. */
export function split2(engine: Engine, groups: number): [number, number] {
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const a = max;
  return [a, Math.ceil(groups / a)];
}

/**
 * What one token's matvec of `w` does and the WGSL pieces it is made of:
 * tunables, the x load (plain, RMSNorm or SwiGLU on load) and the store
 * (plain, RoPE + KV, or SwiGLU). Shared by createMatmul and createChain (chain.ts).
 */
export function decodeSide(engine: Engine, w: GpuWeight, io: MatmulIO, xOffset: number, nSegs: number) {
  const sub = useSubgroups(engine);
  const xvec = w.cols % 4 === 0 && xOffset % 16 === 0;
  const parts0 = kernelParts(engine, w, sub);
  const { fmt, snippet } = parts0;
  const tun = tunables(engine, sub, xvec, snippet.endsWith('_any'), snippet);
  const mvShader = tun.mvSplit ? 'matvec_split' : (fmt.matvec ?? 'matvec_generic');
  const xs = engine.shader(sub ? 'dequant_xs_subgroup' : 'dequant_xs_plain');
  const lane = sub ? { LANE_ARG: ', @builtin(subgroup_invocation_id) lane: u32', LANE: 'lane' } : { LANE_ARG: '', LANE: '0u' };
  const mask = xvec && w.cols % 32 !== 0;
  // GPU tuning, decode only: every workgroup recomputes silu for all of x,
  // which on a GPU is free next to a dispatch; on lavapipe it measured 0-3%
  // slower than the separate swiglu dispatch (s110m, TinyLlama), and in
  // prefill each row tile would repeat it for every token.
  const glu = io.gluUpOffset !== undefined && !engine.cpuTuning && xvec && io.gluUpOffset % 16 === 0;
  const norm = io.norm && xvec && !glu ? io.norm : undefined;
  // Pairs of rows meet by a lane shuffle in the CPU kernels (rows strided by
  // an even workgroup) and through workgroup memory in matvec_split.
  const rope = io.rope && sub && tun.mvWg % 2 === 0 && io.rope.roles.length === nSegs ? io.rope : undefined;
  const ROLE = { q: 1, k: 2, v: 3 };
  // The interleave must match this kernel's rows per workgroup, and one part keeps the blocks aligned.
  const gluStore = !!io.gluStore && !rope && !!w.interleave && !tun.mvSplit && w.interleave * 2 === tun.mvRows * tun.mvWg && w.parts.length === 1;
  const ropeConsts: Record<string, number> = rope
    ? { ROLE0: ROLE[rope.roles[0]], ROLE1: ROLE[rope.roles[1] ?? 'q'], ROLE2: ROLE[rope.roles[2] ?? 'q'], HEAD_DIM: rope.headDim, ROPE_DIM: rope.ropeDim, KV_DIM: rope.kvDim, KV_F16: rope.kvF16 ? 1 : 0 }
    : {};
  if (norm && (norm.w.size < w.cols * 4 || norm.x.size < xOffset + w.cols * 4)) throw new GpuError(`matmul ${w.name}: the norm's x or weight buffer is smaller than ${w.cols} f32`);
  const plain = engine.shader(xvec ? 'dequant_x_vec4' : 'dequant_x_scalar', xvec ? { MASK: mask ? 'true' : 'false' } : {});
  const xload = glu
    ? engine.shader('dequant_x_swiglu', { MASK: mask ? 'true' : 'false' })
    : norm
      ? engine.shader('dequant_x_norm', { MASK: mask ? 'true' : 'false' })
      : plain;
  const hooks = norm ? '' : `\n${engine.shader('dequant_x_inert')}`;
  // store_row()/store_pair() by the output mode; store_all() over a lane's rows (store_glu pairs them itself).
  const store = gluStore ? engine.shader('store_glu') : `${engine.shader(rope ? 'store_rope_kv' : 'store_plain')}\n${engine.shader('store_rows')}`;
  return { ...parts0, sub, xvec, mask, tun, mvShader, xs, lane, glu, norm, rope, gluStore, ropeConsts, plain, xload: xload + hooks, store };
}

/** The bind group entries of a matvec (decode side d) or, without d, of the matmul. */
function bindings(weight: GPUBuffer, info: GPUBuffer, io: MatmulIO, d?: Pick<ReturnType<typeof decodeSide>, 'norm' | 'rope'>): GPUBindGroupEntry[] {
  const norm = d?.norm;
  const rope = d?.rope;
  return [
    { binding: 0, resource: { buffer: weight } },
    { binding: 1, resource: { buffer: norm ? norm.x : io.x } },
    { binding: 2, resource: { buffer: io.y } },
    { binding: 3, resource: { buffer: info } },
    ...(!d || rope ? [{ binding: 4, resource: { buffer: io.params } }] : []),
    ...(norm ? [{ binding: 6, resource: { buffer: norm.w } }] : []),
    ...(rope ? [{ binding: 8, resource: { buffer: rope.table } }, { binding: 9, resource: { buffer: rope.kCache } }, { binding: 10, resource: { buffer: rope.vCache } }] : []),
  ];
}

export async function createMatmul(engine: Engine, w: GpuWeight, io: MatmulIO): Promise<Matmul> {
  const xOffset = io.xOffset ?? 0;
  const yOffset = io.yOffset ?? 0;
  if (xOffset % 4 || yOffset % 4) throw new GpuError(`matmul ${w.name}: x/y offsets (${xOffset}, ${yOffset}) must be multiples of 4 bytes`);
  if (!(io.maxTokens >= 1)) throw new GpuError(`matmul ${w.name}: maxTokens ${io.maxTokens} must be >= 1`);
  if (io.x.size < xOffset + io.maxTokens * w.cols * 4) throw new GpuError(`matmul ${w.name}: x buffer (${io.x.size} B) is smaller than ${io.maxTokens} tokens × ${w.cols} f32 at offset ${xOffset}`);
  const segs = w.segments ?? [w.rows];
  const yOffsets = io.yOffsets ?? [yOffset];
  if (yOffsets.length !== segs.length || yOffsets[0] !== yOffset) throw new GpuError(`matmul ${w.name}: ${segs.length} output regions need ${segs.length} y offsets starting with yOffset, got [${yOffsets}]`);
  segs.forEach((rows, i) => {
    if (yOffsets[i] % 4) throw new GpuError(`matmul ${w.name}: y offset ${yOffsets[i]} must be a multiple of 4 bytes`);
    if (io.y.size < yOffsets[i] + io.maxTokens * rows * 4) throw new GpuError(`matmul ${w.name}: y buffer (${io.y.size} B) is smaller than ${io.maxTokens} tokens × ${rows} f32 at offset ${yOffsets[i]}`);
  });
  const d = decodeSide(engine, w, io, xOffset, segs.length);
  const { sub, xvec, mask, tun, snippet, enables, mvShader, glu, norm, rope, gluStore, ropeConsts, lane, xs, store } = d;
  const dequant = `${d.dequant}\n${engine.shader('product_store')}`;
  // Accumulate is a uniform (Info.acc), not an override: one pipeline serves
  // both y = W·x and y += W·x, which halves the LLVM compiles on lavapipe.
  const common = { kind: '', format: snippet, f16: engine.f16, sub, xvec, mask };
  const mvCode = tun.mvSplit
    ? engine.shader(mvShader, { ENABLES: enables, DEQUANT: dequant, XLOAD: d.xload, XS: engine.shader('dequant_xs_plain'), STORE: store })
    : `${engine.shader(mvShader, { ENABLES: enables, DEQUANT: dequant, XLOAD: d.xload, XS: xs, R: tun.mvRows, STORE: store })}\n${engine.shader('matvec_main', lane)}`;
  const mvRowsPerGroup = tun.mvSplit ? 32 : tun.mvRows * tun.mvWg;
  const mmCode = `${engine.shader('matmul_generic', { ENABLES: enables, DEQUANT: dequant, XLOAD: d.plain, XS: xs, STORE: engine.shader('store_tile'), T: tun.mmTokens, RM: tun.mmRows, ...rawDeq(dequant) })}\n${engine.shader('matmul_main', lane)}`;
  const [mv, mm] = await Promise.all([
    engine.pipeline(
      { ...common, kind: mvShader, rows: tun.mvRows, wg: tun.mvWg, gluUp: glu ? io.gluUpOffset : null, normEps: norm ? norm.eps : null, rope: ropeConsts, gluStore },
      mvCode,
      { WG: tun.mvWg, ...(glu ? { UP_OFF: io.gluUpOffset! / 4 } : {}), ...(norm ? { NORM_EPS: norm.eps } : {}), ...ropeConsts },
    ),
    engine.pipeline({ ...common, kind: 'matmul', tokens: tun.mmTokens, rows: tun.mmRows, wg: tun.mmWg }, mmCode, { WG: tun.mmWg }),
  ]);
  const parts = w.parts.map((p, i) => {
    const info = partInfo(engine, w, p, xOffset / 4, yOffsets.map((o) => o / 4), `${w.name}.info[${i}]`, !!io.accumulate);
    const entries = (matmul: boolean) => bindings(p.buffer, info, io, matmul ? undefined : d);
    const mvBg = engine.device.createBindGroup({ label: `${w.name}.matvec[${i}]`, layout: mv.getBindGroupLayout(0), entries: entries(false) });
    const mmBg = engine.device.createBindGroup({ label: `${w.name}.matmul[${i}]`, layout: mm.getBindGroupLayout(0), entries: entries(true) });
    return {
      mvBg,
      mmBg,
      mvGroups: split2(engine, Math.ceil(p.rows / mvRowsPerGroup)),
      mmGroups: split2(engine, Math.ceil(p.rows / (tun.mmRows * tun.mmWg))),
    };
  });
  return {
    gluFused: glu,
    normFused: !!norm,
    ropeFused: !!rope,
    gluStored: gluStore,
    encode(pass: GPUComputePassEncoder, nTokens: number) {
      if (!(nTokens >= 1 && nTokens <= io.maxTokens)) throw new GpuError(`matmul ${w.name}: nTokens ${nTokens} is outside 1..${io.maxTokens}`);
      if (nTokens === 1) {
        pass.setPipeline(mv);
        for (const p of parts) {
          pass.setBindGroup(0, p.mvBg);
          pass.dispatchWorkgroups(p.mvGroups[0], p.mvGroups[1]);
        }
      } else {
        pass.setPipeline(mm);
        const ty = Math.ceil(nTokens / tun.mmTokens);
        for (const p of parts) {
          pass.setBindGroup(0, p.mmBg);
          pass.dispatchWorkgroups(p.mmGroups[0], ty, p.mmGroups[1]);
        }
      }
    },
  };
}
