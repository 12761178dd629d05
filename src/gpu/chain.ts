// One token's transformer layer as ONE dispatch on CPU rasterisers (lavapipe).
// Each dispatch there costs ~60-100 µs of thread hand-offs (the queue thread
// wakes the workers and waits for them), more than the work of most decode
// products at s110m shapes. A chain runs the layer's steps as phases of one
// persistent kernel: its workgroups claim items (row groups, attention
// heads) of the current phase from an atomic counter, count the items they
// finish, and spin until the phase is done before the next one. No workgroup
// ever waits on an item nobody has claimed, so any number of running
// workgroups (lavapipe hands each thread a run of them) finishes the chain.
// Lavapipe's atomics are sequentially consistent and x86 keeps stores in
// order, so the finish count publishes an item's results without a barrier
// (there is no cross-workgroup barrier in WGSL; GPUs do not get this path).
//
// The shader is composed from the ordinary kernels' WGSL: each phase kernel's
// module-scope names get a suffix, and its resources are mapped onto the
// chain's shared bindings (one activation buffer as vec4s, with the f32
// accesses rewritten as vector components; the caches; the rope table; the
// step uniform) or onto bindings of its own (weight, Info, norm weight).
import { GpuError } from '../errors.ts';
import type { Engine } from './engine.ts';
import { decodeSide, type MatmulIO, partInfo } from './matmul.ts';
import type { GpuWeight } from './weights.ts';
import { tileCode, tileRows, tileTokens } from '../models/tile-matmul.ts';

/** A matvec of the chain: x and y are the chain's activation buffer (offsets in io). */
export interface ChainMatvec { kind: 'matvec'; w: GpuWeight; io: MatmulIO }
/** attention_subgroup.wgsl for one token: q and out at element offsets of the activation buffer. */
export interface ChainAttention {
  kind: 'attention'; nHeads: number; nKvHeads: number; headDim: number; kvF16: boolean; hg: number; qOff: number; outOff: number;
  /** Batched chains: up to this many tokens (default 1), params.nTokens of them real. */
  tokens?: number;
}
/**
 * Batched chains (several tokens, each of its own sequence, src/models/llama-batch-chain.ts):
 * a tile product (matmul_generic.wgsl: T tokens × the weight's rows) with io.x,
 * io.y the activation buffer; RMSNorm of `tokens` rows (rmsnorm_subgroup.wgsl);
 * RoPE + KV store of `tokens` rows (rope.wgsl; offsets in elements, even).
 */
export interface ChainTile { kind: 'tile'; w: GpuWeight; io: MatmulIO; tokens: number }
export interface ChainNorm { kind: 'norm'; w: GPUBuffer; eps: number; dim: number; xOff: number; yOff: number; tokens: number }
export interface ChainRope {
  kind: 'rope'; nHeads: number; nKvHeads: number; headDim: number; ropeDim: number; kvF16: boolean; qOff: number; kOff: number; vOff: number; tokens: number;
}
/** quantize_q8x.wgsl over `tokens` (even: the tile's pairs) of x at element xOff (rows of cols): createChain puts one before a phase of 8-bit-x tiles. */
interface ChainQuant { kind: 'quant'; xOff: number; cols: number; tokens: number }
export type ChainKernel = ChainMatvec | ChainAttention | ChainTile | ChainNorm | ChainRope;

export interface ChainShared {
  /** f32 activations; every phase reads and writes regions of it. */
  acts: GPUBuffer;
  params: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  table: GPUBuffer;
  /** u32 counters, zeroed before each submit that runs chains (2 per phase). */
  claims: GPUBuffer;
  /** This chain's first counter. */
  claimBase: number;
  /** Batched chains: per token (position, first cache slot), seq_table.wgsl; else one token at params.pos of params.base. */
  seqs?: GPUBuffer;
  /** Batched chains: the 8-bit x records of the Q4_0 tiles (tile-matmul.ts q8xBytes for the widest x); without it such tiles do not chain. */
  q8x?: GPUBuffer;
  /** Phases the counters at claimBase have room for (with the quantize phases added before 8-bit-x tiles). */
  maxPhases?: number;
}

export interface Chain {
  encode(pass: GPUComputePassEncoder, nTokens?: number): void;
  /** Uniform buffers it allocated (the owner destroys them). */
  readonly buffers: GPUBuffer[];
}

const SHARED = ['acts4', 'kcache', 'vcache', 'rope_table', 'params', 'claims', 'chain'] as const;

/**
 * `code` with its module-scope names suffixed and its resources mapped: a
 * resource name mapped to a string becomes that shared name (its declaration
 * dropped); one mapped to a number keeps its declaration, renamed, at that
 * binding; its directives are dropped. An unmapped resource is an internal error.
 */
export function composePhase(code: string, suffix: string, resources: Record<string, string | number | { f32of: string }>): string {
  const rename = new Map<string, string>();
  const f32s = new Map<string, string>(); // f32 arrays read through a vec4 view
  // Directives (enable …;) belong to the chain's header.
  let out = code.replace(/^\s*(?:enable|requires|diagnostic)\b[^;]*;/gm, '').replace(/^@group\(0\) @binding\((\d+)\) (var(?:<[^>]*>)?) (\w+)(\s*:[^;]+;)/gm, (_m, _b, decl: string, name: string, rest: string) => {
    const to = resources[name];
    if (to === undefined) throw new GpuError(`internal error: chain phase ${suffix} has an unmapped resource ${name}`);
    if (typeof to === 'string') {
      rename.set(name, to);
      return '';
    }
    if (typeof to === 'object') {
      f32s.set(name, to.f32of);
      return '';
    }
    rename.set(name, name + suffix);
    return `@group(0) @binding(${to}) ${decl} ${name}${rest}`;
  });
  for (const [name, view] of f32s) out = indexAsComponent(out, name, view);
  for (const m of out.matchAll(/^(?:fn|const|override|struct|var(?:<[^>]*>)?)\s+([A-Za-z_]\w*)/gm)) if (!rename.has(m[1])) rename.set(m[1], m[1] + suffix);
  if (rename.size) {
    const re = new RegExp(`(?<![.\\w])(${[...rename.keys()].join('|')})(?!\\w)`, 'g');
    out = out.replace(re, (n) => rename.get(n)!);
  }
  return out;
}

/** `name[E]` (an f32 array) as `view[(E) >> 2u][(E) & 3u]` (the same memory as vec4s). */
function indexAsComponent(code: string, name: string, view: string): string {
  const re = new RegExp(`(?<![.\\w])${name}\\[`, 'g');
  let out = '';
  let last = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < code.length && depth > 0; i++) depth += code[i] === '[' ? 1 : code[i] === ']' ? -1 : 0;
    if (depth) throw new GpuError(`internal error: unbalanced [ after ${name} in a chain phase`);
    const e = code.slice(m.index + m[0].length, i - 1);
    out += `${code.slice(last, m.index)}${view}[(${e}) >> 2u][(${e}) & 3u]`;
    last = i;
    re.lastIndex = i;
  }
  return out + code.slice(last);
}

/** The chain's kernels, phase by phase, as one pipeline and bind group; undefined where a kernel cannot join. */
export async function createChain(engine: Engine, shared: ChainShared, given: ChainKernel[][], label: string): Promise<Chain | undefined> {
  if (!engine.cpuTuning || !engine.subgroups) return undefined;
  // Each tile's product side, once: it decides the kernel (8-bit x or not) and its tokens.
  const sides = new Map<ChainTile, ReturnType<typeof decodeSide>>();
  for (const k of given.flat()) {
    if (k.kind === 'tile') sides.set(k, decodeSide(engine, k.w, { ...k.io, norm: undefined, rope: undefined, gluUpOffset: undefined }, k.io.xOffset ?? 0, (k.w.segments ?? [k.w.rows]).length));
  }
  // A phase of 8-bit-x tiles (all reading one x) first quantizes that x, as a phase of its own.
  const phases: (ChainKernel | ChainQuant)[][] = [];
  for (const phase of given) {
    const x8 = phase.filter((k): k is ChainTile => k.kind === 'tile' && tileTokens(sides.get(k)!, k.tokens).x8);
    if (x8.length) {
      const { io, w, tokens } = x8[0];
      if (!shared.q8x || x8.some((k) => k.io.xOffset !== io.xOffset || k.w.cols !== w.cols || k.tokens !== tokens)) return undefined;
      phases.push([{ kind: 'quant', xOff: (io.xOffset ?? 0) / 4, cols: w.cols, tokens: tileTokens(sides.get(x8[0])!, tokens).T }]);
    }
    phases.push(phase);
  }
  if (shared.maxPhases !== undefined && phases.length > shared.maxPhases) throw new GpuError(`internal error: chain ${label} has ${phases.length} phases, its counters room for ${shared.maxPhases}`);
  const texts: string[] = [];
  const constants: Record<string, number> = {};
  const entries: GPUBindGroupEntry[] = [];
  const keyParts: unknown[] = [];
  const calls: { items: number; call: (t: string) => string }[][] = [];
  const owned: GPUBuffer[] = [];
  // Bindings per stage: the shared ones (chain_common.wgsl) and each kernel's own.
  const usesQ8 = phases.some((p) => p.some((k) => k.kind === 'quant'));
  let storage = (shared.seqs ? 6 : 5) + (usesQ8 ? 1 : 0);
  let uniforms = 2;
  const fail = () => {
    for (const b of owned) engine.destroyBuffer(b);
    return undefined;
  };
  let k = 0;
  for (const phase of phases) {
    const row: (typeof calls)[number] = [];
    for (const kern of phase) {
      const sfx = `_k${k}`;
      const own = 16 + 4 * k; // this kernel's own bindings
      if (kern.kind === 'matvec') {
        const { w, io } = kern;
        const xOffset = io.xOffset ?? 0;
        const segs = w.segments ?? [w.rows];
        const d = decodeSide(engine, w, io, xOffset, segs.length);
        if (d.tun.mvSplit || !d.sub || w.parts.length !== 1 || d.glu || (io.gluStore && !d.gluStore) || (io.norm && !d.norm) || (io.rope && !d.rope)) return fail();
        const code = engine.shader(d.mvShader, { ENABLES: '', DEQUANT: `${d.dequant}\n${engine.shader('product_store')}`, XLOAD: d.xload, XS: d.xs, R: d.tun.mvRows, STORE: d.store });
        texts.push(composePhase(code, sfx, { w: own, info: own + 1, nw: own + 2, x: 'acts4', y: { f32of: 'acts4' }, rp: 'params', table: 'rope_table', kc: 'kcache', vc: 'vcache' }));
        for (const [name, v] of Object.entries({ WG: d.tun.mvWg, ...(d.norm ? { NORM_EPS: d.norm.eps } : {}), ...d.ropeConsts })) constants[name + sfx] = v;
        const info = partInfo(engine, w, w.parts[0], xOffset / 4, (io.yOffsets ?? [io.yOffset ?? 0]).map((o) => o / 4), `${w.name}.chain.info`, !!io.accumulate);
        owned.push(info);
        entries.push({ binding: own, resource: { buffer: w.parts[0].buffer } }, { binding: own + 1, resource: { buffer: info } });
        storage++;
        uniforms++;
        if (d.norm) {
          entries.push({ binding: own + 2, resource: { buffer: d.norm.w } });
          storage++;
        }
        keyParts.push({ f: d.snippet, r: d.tun.mvRows, normEps: d.norm ? d.norm.eps : null, rope: d.ropeConsts, glu: d.gluStore });
        row.push({ items: Math.ceil(w.rows / (d.tun.mvRows * d.tun.mvWg)), call: (t) => `matvec${sfx}(${t}, lid, lane);` });
      } else if (kern.kind === 'quant') {
        texts.push(composePhase(engine.shader('quantize_q8x'), sfx, { x: 'acts4', q8x: 'q8x', params: 'params' }));
        constants[`X_OFF${sfx}`] = kern.xOff;
        constants[`COLS${sfx}`] = kern.cols;
        keyParts.push({ quant: kern.cols, xOff: kern.xOff });
        row.push({ items: (kern.tokens / 2) * (kern.cols / 32), call: (t) => `quantize_q8x${sfx}(${t}, lane);` });
      } else if (kern.kind === 'tile') {
        const { w, io } = kern;
        const xOffset = io.xOffset ?? 0;
        const d = sides.get(kern)!;
        const x8 = tileTokens(d, kern.tokens).x8;
        const R = tileRows(d, x8);
        // One token tile of the step's tokens, 8 lanes a row group: else the step's own dispatches.
        if (!d.sub || !d.xvec || w.parts.length !== 1 || (io.gluStore && !d.gluStore) || d.tun.mmWg !== 8 || kern.tokens > d.tun.mmTokens) return fail();
        texts.push(composePhase(tileCode(engine, d, kern.tokens, R, ''), sfx, { w: own, info: own + 1, x: 'acts4', q8x: 'q8x', y: { f32of: 'acts4' }, params: 'params' }));
        constants[`WG${sfx}`] = 8;
        const info = partInfo(engine, w, w.parts[0], xOffset / 4, (io.yOffsets ?? [io.yOffset ?? 0]).map((o) => o / 4), `${w.name}.chain.info`, !!io.accumulate);
        owned.push(info);
        entries.push({ binding: own, resource: { buffer: w.parts[0].buffer } }, { binding: own + 1, resource: { buffer: info } });
        storage++;
        uniforms++;
        keyParts.push({ tile: d.snippet, t: kern.tokens, r: R, glu: d.gluStore, x8 });
        row.push({ items: Math.ceil(w.rows / (R * 8)), call: (t) => `matmul${sfx}(${t}, 0u, lid, lane);` });
      } else if (kern.kind === 'norm') {
        texts.push(composePhase(engine.shader('rmsnorm_subgroup'), sfx, { x: { f32of: 'acts4' }, nw: own, y: { f32of: 'acts4' } }));
        const c = { DIM: kern.dim, EPS: kern.eps, X_OFF: kern.xOff, Y_OFF: kern.yOff };
        for (const [name, v] of Object.entries(c)) constants[name + sfx] = v;
        entries.push({ binding: own, resource: { buffer: kern.w } });
        storage++;
        keyParts.push({ norm: c });
        row.push({ items: kern.tokens, call: (t) => `if (${t} < params.nTokens) { rmsnorm_row${sfx}(${t}, lane); }` });
      } else if (kern.kind === 'rope') {
        const r = kern;
        if (r.qOff % 2 || r.kOff % 2 || r.vOff % 2) throw new GpuError(`internal error: chain rope offsets (${r.qOff}, ${r.kOff}, ${r.vOff}) must be even`);
        texts.push(composePhase(engine.shader('rope'), sfx, { params: 'params', qkv: { f32of: 'acts4' }, table: 'rope_table', kc: 'kcache', vc: 'vcache' }));
        const c = { N_HEADS: r.nHeads, N_KV: r.nKvHeads, HEAD_DIM: r.headDim, ROPE_DIM: r.ropeDim, KV_F16: r.kvF16 ? 1 : 0, Q_OFF: r.qOff / 2, K_OFF: r.kOff / 2, V_OFF: r.vOff / 2 };
        for (const [name, v] of Object.entries(c)) constants[name + sfx] = v;
        keyParts.push({ rope: c });
        // Eight pairs an item, one a lane; rope_kv() skips those past the step's tokens.
        row.push({ items: Math.ceil((r.tokens * (r.nHeads + r.nKvHeads) * r.headDim) / 2 / 8), call: (t) => `rope_kv${sfx}(${t} * 8u + lid);` });
      } else {
        const a = kern;
        if (a.qOff % 2 || a.outOff % 2) throw new GpuError(`internal error: chain attention offsets (${a.qOff}, ${a.outOff}) must be even`);
        const code = engine.shader('attention_subgroup', { PAIRS: a.headDim / 16, HG: a.hg, KV: engine.shader('attention_kv') });
        texts.push(composePhase(code, sfx, { params: 'params', q: { f32of: 'acts4' }, out: { f32of: 'acts4' }, kc: 'kcache', vc: 'vcache' }));
        const c = { N_HEADS: a.nHeads, N_KV: a.nKvHeads, HEAD_DIM: a.headDim, KV_F16: a.kvF16 ? 1 : 0, SCALE: 1 / Math.sqrt(a.headDim), Q_OFF: a.qOff, OUT_OFF: a.outOff };
        for (const [name, v] of Object.entries(c)) constants[name + sfx] = v;
        keyParts.push({ attention: a.hg, ...c });
        const groups = a.nHeads / a.hg, tokens = a.tokens ?? 1;
        row.push({ items: tokens * groups, call: (t) => (tokens === 1 ? `attention${sfx}(${t}, lane);` : `if (${t} < params.nTokens * ${groups}u) { attention${sfx}(${t}, lane); }`) });
      }
      k++;
    }
    calls.push(row);
  }
  // main: per phase, claim items until none are left, then wait for the phase's last item.
  const body = calls
    .map((row, p) => {
      const total = row.reduce((s, c) => s + c.items, 0);
      let first = 0;
      const dispatch = row
        .map((c, i) => {
          const local = first === 0 ? 't' : `t - ${first}u`;
          const line = i === row.length - 1 ? c.call(local) : `if (t < ${first + c.items}u) { ${c.call(local)} } else {`;
          first += c.items;
          return line;
        })
        .join(' ');
      const close = ' }'.repeat(row.length - 1);
      const wait = p === calls.length - 1 ? '' : `\n  wait_done(${p}u, ${total}u);`;
      return `  loop {\n    let t = claim(${p}u, lid);\n    if (t >= ${total}u) { break; }\n    ${dispatch}${close}\n    finish(${p}u, lid);\n  }${wait}`;
    })
    .join('\n');
  const header = [
    [engine.f16 ? 'enable f16;' : '', 'enable subgroups;', 'diagnostic(off, subgroup_uniformity);'].join(' '),
    engine.shader('chain_common', {
      SEQ: engine.shader(shared.seqs ? 'seq_table' : 'seq_uniform', shared.seqs ? { BINDING: 7 } : {}),
      Q8X: usesQ8 ? '@group(0) @binding(8) var<storage, read_write> q8x: array<vec4<u32>>;' : '',
    }),
  ].join('\n');
  const main = `@compute @workgroup_size(8)\nfn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {\n${body}\n}`;
  const code = [header, ...texts, main].join('\n');
  const lim = engine.device.limits;
  if (storage > lim.maxStorageBuffersPerShaderStage || uniforms > lim.maxUniformBuffersPerShaderStage) return fail();
  let pipeline: GPUComputePipeline;
  try {
    pipeline = await engine.pipeline({ kind: 'chain', phases: keyParts, items: calls.map((r) => r.map((c) => c.items)), f16: engine.f16, seqs: !!shared.seqs }, code, constants);
  } catch {
    return fail(); // a rasteriser that cannot build the composed shader decodes step by step instead
  }
  const chainInfo = engine.createBuffer('other', `${label}.chain`, 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(chainInfo, 0, new Uint32Array([shared.claimBase, 0, 0, 0]));
  owned.push(chainInfo);
  const buffers: Record<(typeof SHARED)[number], GPUBuffer> = {
    acts4: shared.acts, kcache: shared.kCache, vcache: shared.vCache, rope_table: shared.table, params: shared.params, claims: shared.claims, chain: chainInfo,
  };
  for (const [i, name] of SHARED.entries()) entries.push({ binding: i, resource: { buffer: buffers[name] } });
  if (shared.seqs) entries.push({ binding: 7, resource: { buffer: shared.seqs } });
  if (usesQ8 && shared.q8x) entries.push({ binding: 8, resource: { buffer: shared.q8x } });
  const bindGroup = engine.device.createBindGroup({ label: `${label}.chain`, layout: pipeline.getBindGroupLayout(0), entries });
  return {
    buffers: owned,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      // Eight workgroups: more than lavapipe's threads; the ones that start late find the work claimed.
      pass.dispatchWorkgroups(8);
    },
  };
}
