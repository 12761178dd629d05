// Synthetic GGUF models of any supported architecture, shape and weight
// format, with random weights generated directly as quant blocks and streamed
// to disk in chunks. Used for tests (tiny) and for size/speed runs at real
// shapes (tinyllama, qwen2.5-0.5b, llama-3.2-1b, ...). The per-architecture
// keys and tensors are in families.ts.
//
// Init. Random models tie everywhere: with the legacy 'flat' init (every
// matrix std 0.02) the logits of a tiny model span about ±0.5, the top two
// differ by ~0.01, and attention is uniform (q·k ≈ 0), so RoPE bugs and
// rounding differences both go unnoticed. The 'wide' init (default for every
// family but the legacy llama presets) keeps activations at unit scale
// (std = gain/sqrt(row length)), gives q·k·scale a std of ~2 so attention
// depends on content and position, and sets the logits' std over the
// vocabulary to `logitStd` (default 4·sqrt(2·ln vocab), about 14 for 512
// tokens): the expected gap between the top two logits is then ~4 units.
// That logit scale comes from the output matrix's std when untied, and from
// the output norm's weights (≈ logitStd / (embedding rms · sqrt(dim)), e.g.
// 14 at dim 64) when tied, so the residual stream stays balanced either way.
// A final soft-cap lowers the default so the cap does not flatten the top.
// Norms are 1 ± 0.25 and biases ±0.87, so code that skips them gives
// different logits. Exact gains: familyTensors() in families.ts.
import { stat } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import { openGguf } from '../gguf/reader.ts';
import type { GgufKV } from '../gguf/types.ts';
import { GgufWriter, kv } from '../gguf/writer.ts';
import { GgmlType, type TypeInfo, typeByName, typeInfo } from '../quant/table.ts';
import { blockFiller, generatableTypes, normWeights, Rng, uniformWeights } from './blocks.ts';
import { ARCHES, type Arch, checkLayout, FAMILIES, familyKeys, familyTensors, ggufArch, type Layout, MOE_ARCHES, type Shape } from './families.ts';
import { syntheticVocab } from './vocab.ts';

export type { Arch, RopeScalingKind, Shape } from './families.ts';
export { ARCHES, MOE_ARCHES } from './families.ts';

type LayoutOptions = Partial<Omit<Layout, 'keyLength' | 'eps' | 'ropeBaseSwa'>>;
type Preset = Partial<Shape> & LayoutOptions & { arch: Arch; keyLength?: boolean };

/** 'tiny' is the tiny shape of --arch; the others fix the architecture (shapes from the models' public configs). */
export const PRESETS: Record<string, Preset> = {
  tiny: { arch: 'llama' },
  s110m: { arch: 'llama', dim: 768, layers: 12, heads: 12, kvHeads: 12, ffn: 2048, vocab: 32000, ctx: 1024 },
  tinyllama: { arch: 'llama', dim: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, ctx: 2048 },
  'qwen2.5-0.5b': { arch: 'qwen2', dim: 896, layers: 24, heads: 14, kvHeads: 2, ffn: 4864, vocab: 151936, ctx: 32768, tied: true },
  'qwen3-0.6b': { arch: 'qwen3', dim: 1024, layers: 28, heads: 16, kvHeads: 8, headDim: 128, ffn: 3072, vocab: 151936, ctx: 40960, tied: true },
  'llama-3.2-1b': {
    arch: 'llama', dim: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64, ffn: 8192, vocab: 128256, ctx: 131072, tied: true, keyLength: true,
    ropeBase: 500000, ropeFreqs: true, ropeFactor: 32, ropeOrigCtx: 8192,
  },
  'gemma-2-2b': { arch: 'gemma2', dim: 2304, layers: 26, heads: 8, kvHeads: 4, headDim: 256, ffn: 9216, vocab: 256000, ctx: 8192 },
  'phi-3.5-mini': {
    arch: 'phi3', dim: 3072, layers: 32, heads: 32, kvHeads: 32, ffn: 8192, vocab: 32064, ctx: 131072, ropeScaling: 'longrope', ropeOrigCtx: 4096,
    slidingWindow: 262144,
  },
  // Benchmark shapes (scripts/bench-moe.ts): a Qwen3-MoE-like layer scaled down (8 experts, top-2, dim 1024), the dense
  // model of its active size (ffn = k · expert ffn) and of its total size (ffn = E · expert ffn).
  'moe-bench': { arch: 'qwen3moe', dim: 1024, layers: 8, heads: 16, kvHeads: 4, headDim: 64, ffn: 4096, experts: 8, expertsUsed: 2, expertFfn: 2048, vocab: 32000, ctx: 2048 },
  'moe-bench-active': { arch: 'qwen3', dim: 1024, layers: 8, heads: 16, kvHeads: 4, headDim: 64, ffn: 4096, vocab: 32000, ctx: 2048 },
  'moe-bench-total': { arch: 'qwen3', dim: 1024, layers: 8, heads: 16, kvHeads: 4, headDim: 64, ffn: 16384, vocab: 32000, ctx: 2048 },
};
/** The presets that keep the original flat init for arch llama (byte-identical files for existing callers). */
const LEGACY = new Set(['tiny', 's110m', 'tinyllama']);

/** llama_ftype (llama.h) written as general.file_type. */
const FTYPE: Record<string, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 12, q4_k: 14, q4_k_m: 15,
  q5_k: 16, q6_k: 18, iq4_nl: 25, iq4_xs: 30, bf16: 32, mxfp4_moe: 38,
};
/** Type mixes (per role) rather than one type: q4_k_m and mxfp4_moe (MXFP4 experts, Q8_0 elsewhere, as llama-quant.cpp). */
const MIXES = new Set(['q4_k_m', 'mxfp4_moe']);
export const MODEL_TYPES = Object.keys(FTYPE);

export interface MakeModelOptions extends Partial<Shape>, LayoutOptions {
  out: string;
  /** llama (default), qwen2, qwen3, gemma, gemma2, gemma3, phi3, granite, smollm3, olmo2; MoE: qwen3moe, mixtral, olmoe, gpt-oss, qwen2moe. */
  arch?: string;
  preset?: string;
  /** A weight type (f32 … iq4_xs) or the q4_k_m or mxfp4_moe mix. Default f32. MoE routers stay F32 (as llama.cpp's quantizer keeps them). */
  type?: string;
  seed?: number;
  /** Copy tokenizer.* metadata from this vocabulary GGUF; the vocab size comes from it. */
  vocabFile?: string;
  name?: string;
  /** 'flat': every matrix has std `std` (default 0.02), norms 1 ± 0.05; 'wide': see the top of this file. */
  init?: 'flat' | 'wide';
  /** Progress/notes sink (default: none). */
  log?: (line: string) => void;
}

export interface MadeModel {
  path: string; bytes: number; arch: Arch; shape: Shape; layout: Layout;
  tensors: { name: string; dims: number[]; type: string }[]; notes: string[];
}

const CHUNK = 16 << 20;
const isK = (t: GgmlType) => typeInfo(t)!.blockElems === 256;

/** llama.cpp's "use more bits" layers: first and last eighth, and every third in between. */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8); // C integer division, as in llama.cpp
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

/** llama.cpp's fallback when a type's block does not divide the row length. */
function fallback(t: GgmlType, rowLen: number): GgmlType {
  let out = t;
  if (rowLen % typeInfo(out)!.blockElems !== 0) {
    const alt: Partial<Record<GgmlType, GgmlType>> = {
      [GgmlType.Q2_K]: GgmlType.IQ4_NL, [GgmlType.Q3_K]: GgmlType.IQ4_NL, [GgmlType.IQ4_XS]: GgmlType.IQ4_NL,
      [GgmlType.Q4_K]: GgmlType.Q5_0, [GgmlType.Q5_K]: GgmlType.Q5_1, [GgmlType.Q6_K]: GgmlType.Q8_0,
    };
    out = alt[out] ?? GgmlType.F16;
  }
  if (rowLen % typeInfo(out)!.blockElems !== 0) out = GgmlType.F16;
  return out;
}

/** Role → type. q4_k_m follows llama.cpp: Q6_K output (and a tied token_embd), Q6_K attn_v/attn_qkv/ffn_down on the use-more-bits layers. */
function weightType(mix: string, role: string, layer: number, nLayers: number): GgmlType {
  if (role === 'router') return GgmlType.F32;
  if (mix === 'mxfp4_moe') return role === 'ffn_exps' || role === 'ffn_down_exps' ? GgmlType.MXFP4 : GgmlType.Q8_0;
  if (mix === 'q4_k_m') {
    if (role === 'output') return GgmlType.Q6_K;
    if ((role === 'attn_v' || role === 'ffn_down' || role === 'ffn_down_exps') && useMoreBits(layer, nLayers)) return GgmlType.Q6_K;
    return GgmlType.Q4_K;
  }
  return typeByName(mix)!.id;
}

function resolveArch(o: MakeModelOptions): { preset: string; p: Preset; arch: Arch } {
  const preset = o.preset ?? 'tiny';
  const p = PRESETS[preset];
  if (!p) throw new UsageError(`unknown preset '${preset}': use one of ${Object.keys(PRESETS).join(', ')}`);
  const all: readonly string[] = [...ARCHES, ...MOE_ARCHES];
  if (o.arch !== undefined && !all.includes(o.arch)) throw new UsageError(`--arch ${o.arch} is not one of ${all.join(' ')}`);
  if (o.arch !== undefined && preset !== 'tiny' && o.arch !== p.arch) throw new UsageError(`--preset ${preset} is a ${p.arch} model: drop --arch ${o.arch} or use --preset tiny`);
  return { preset, p, arch: (preset === 'tiny' ? (o.arch as Arch | undefined) ?? 'llama' : p.arch) };
}

export function resolveShape(o: MakeModelOptions): Shape {
  const { preset, p, arch } = resolveArch(o);
  const f = FAMILIES[arch];
  const type = (o.type ?? 'f32').toLowerCase();
  const kQuant = type === 'q4_k_m' || (typeByName(type) !== undefined && isK(typeByName(type)!.id));
  const base: Shape = preset === 'tiny' ? { ...f.tiny, ...(kQuant ? f.tinyK : {}) } : { ...f.tiny, ...pick(p), headDim: p.headDim ?? p.dim! / p.heads! };
  const s: Shape = { ...base };
  const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  for (const k of Object.keys(s) as (keyof Shape)[]) {
    const v = o[k];
    if (v !== undefined) {
      if (!Number.isInteger(v) || v < 1) throw new UsageError(`${flag(k)} ${v} must be a positive integer`);
      s[k] = v;
    }
  }
  if (o.heads !== undefined && o.kvHeads === undefined) s.kvHeads = Math.min(s.kvHeads, s.heads);
  const derived = o.headDim === undefined && (o.dim !== undefined || o.heads !== undefined);
  if (derived) {
    if (s.dim % s.heads !== 0) throw new UsageError(`--dim ${s.dim} is not a multiple of --heads ${s.heads}: pick a dim divisible by the head count`);
    s.headDim = s.dim / s.heads;
  }
  if (s.heads % s.kvHeads !== 0) throw new UsageError(`--heads ${s.heads} is not a multiple of --kv-heads ${s.kvHeads}: pick a kv-head count that divides it`);
  if (s.headDim % 2 !== 0) throw new UsageError(`head size ${s.headDim} must be even for RoPE: change --dim, --heads or --head-dim`);
  return s;
}

function pick(p: Preset): Partial<Shape> {
  const out: Partial<Shape> = {};
  for (const k of ['dim', 'layers', 'heads', 'kvHeads', 'ffn', 'vocab', 'ctx', 'experts', 'expertsUsed', 'expertFfn', 'sharedFfn'] as const) if (p[k] !== undefined) out[k] = p[k];
  return out;
}

function resolveLayout(o: MakeModelOptions, arch: Arch, preset: string, p: Preset, s: Shape): Layout {
  const f = FAMILIES[arch];
  const d: Partial<Layout> = { ...f.defaults, ...(preset === 'tiny' ? f.tinyExtra : {}), ...p };
  const get = <K extends keyof LayoutOptions>(k: K): Layout[K] | undefined => (o[k] !== undefined ? (o[k] as Layout[K]) : (d[k] as Layout[K] | undefined));
  const init = o.init ?? (arch === 'llama' && LEGACY.has(preset) ? 'flat' : 'wide');
  if (init !== 'flat' && init !== 'wide') throw new UsageError(`--init ${init} is not one of flat, wide`);
  if (init === 'wide' && o.std !== undefined) throw new UsageError('--std sets the flat init: add --init flat (the wide init scales each matrix by its row length)');
  const ropeScaling = get('ropeScaling') ?? 'none';
  if (!['none', 'linear', 'yarn', 'longrope'].includes(ropeScaling)) throw new UsageError(`--rope-scaling ${ropeScaling} is not one of none, linear, yarn, longrope`);
  const ropeFreqs = get('ropeFreqs') ?? false;
  const ropeFactor = get('ropeFactor') ?? (ropeFreqs ? 8 : ropeScaling === 'linear' ? 2 : 4);
  const ropeOrigCtx = get('ropeOrigCtx') ??
    (ropeFreqs ? Math.min(8192, s.ctx) : ropeScaling === 'yarn' ? Math.max(1, Math.round(s.ctx / ropeFactor)) : ropeScaling === 'longrope' ? Math.max(1, Math.floor(s.ctx / 4)) : s.ctx);
  const l: Layout = {
    tied: get('tied') ?? f.tied === 'always',
    keyLength: f.keyLength || p.keyLength === true || s.headDim * s.heads !== s.dim,
    eps: f.eps,
    ropeBase: get('ropeBase') ?? f.ropeBase,
    ropeBaseSwa: d.ropeBaseSwa,
    ropeScaling, ropeFactor, ropeOrigCtx, ropeFreqs,
    slidingWindow: get('slidingWindow'),
    swaPattern: get('swaPattern') ?? 0,
    attnSoftcap: get('attnSoftcap'),
    finalSoftcap: get('finalSoftcap'),
    init,
    std: o.std ?? 0.02,
    logitStd: 0,
  };
  // The top of N(0, σ²) logits over V tokens sits near σ·sqrt(2·ln V), and the top-two gap is ~σ/sqrt(2·ln V).
  // A final soft-cap c squeezes that gap by sech²(top/c): keep top/c ≤ 0.8, which leaves most of the gap.
  const k = Math.sqrt(2 * Math.log(s.vocab));
  l.logitStd = get('logitStd') ?? Math.min(4 * k, l.finalSoftcap ? (0.8 * l.finalSoftcap) / k : Number.POSITIVE_INFINITY);
  for (const k of ['slidingWindow', 'swaPattern', 'ropeOrigCtx'] as const) {
    const v = l[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new UsageError(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${v} must be a non-negative integer`);
  }
  checkLayout(arch, s, l);
  return l;
}

/** Writes a synthetic model; returns what was written. */
export async function makeModel(o: MakeModelOptions): Promise<MadeModel> {
  const type = (o.type ?? 'f32').toLowerCase();
  if (!(type in FTYPE)) throw new UsageError(`--type ${o.type} is not one of ${MODEL_TYPES.join(' ')}`);
  if (!MIXES.has(type) && !generatableTypes().includes(type.toUpperCase())) throw new UsageError(`--type ${type} cannot be generated`);
  if (type === 'mxfp4_moe' && !(MOE_ARCHES as readonly string[]).includes(o.arch ?? PRESETS[o.preset ?? 'tiny']?.arch ?? '')) throw new UsageError(`--type mxfp4_moe quantizes expert tensors: use it with --arch ${MOE_ARCHES.join('|')}`);
  const log = o.log ?? (() => {});
  const notes: string[] = [];
  const { preset, p, arch } = resolveArch(o);
  const shape = resolveShape(o);

  let vocabKv: GgufKV[];
  if (o.vocabFile) {
    const v = await openGguf(o.vocabFile);
    vocabKv = [...v.kv.values()].filter((k) => k.key.startsWith('tokenizer.'));
    await v.close();
    const toks = vocabKv.find((k) => k.key === 'tokenizer.ggml.tokens')?.value;
    const n = toks && typeof toks === 'object' && 'values' in toks ? toks.values.length : 0;
    if (!n) throw new UsageError(`--vocab ${o.vocabFile} has no tokenizer.ggml.tokens: pass a vocabulary GGUF such as ggml-vocab-llama-spm.gguf`);
    shape.vocab = n;
  } else {
    vocabKv = syntheticVocab(shape.vocab);
  }
  const layout = resolveLayout(o, arch, preset, p, shape);

  const plan = familyTensors(arch, shape, layout);
  const specs = plan.map((t) => {
    if (!t.rows) return { ...t, type: GgmlType.F32 };
    const cols = t.dims[0]!;
    const want = weightType(type, t.role, t.layer, shape.layers);
    const got = fallback(want, cols);
    if (got !== want) {
      const note = `${t.name}: rows of ${cols} are not a multiple of the ${typeInfo(want)!.name} block (${typeInfo(want)!.blockElems}); using ${typeInfo(got)!.name} as llama.cpp does`;
      notes.push(note);
      log(`note: ${note}`);
    }
    return { ...t, type: got };
  });

  // llama.cpp keys Phi-3 token attributes off a general.name containing "phi3"/"phi-3" and then needs <|endoftext|>,
  // which the synthetic vocabulary lacks: write "phi 3" (as the converter's "Phi 3.5 Mini Instruct" does).
  const name = (arch !== 'llama' && preset === 'tiny' ? `synthetic-${arch}-tiny-${type}` : `synthetic-${preset}-${type}`).replace(/phi-?3/g, 'phi 3');
  const meta: GgufKV[] = [
    kv.str('general.architecture', ggufArch(arch)),
    kv.str('general.name', o.name ?? name),
    kv.u32('general.file_type', FTYPE[type]!),
    kv.u32('general.quantization_version', 2),
    ...familyKeys(arch, shape, layout),
    ...vocabKv,
  ];

  const rng = new Rng(o.seed ?? 1);
  const w = await GgufWriter.create(o.out, { kv: meta, tensors: specs, atomic: true });
  try {
    const buf = new Uint8Array(CHUNK);
    for (const s of specs) {
      if (s.vec) {
        const v = s.vec;
        const n = s.dims.reduce((x, y) => x * y, 1); // gpt-oss's expert biases are 2-D
        await w.writeTensorData(s.name, v === 'legacyNorm' ? normWeights(n, rng) : 'values' in v ? new Uint8Array(v.values.buffer) : uniformWeights(n, v.center, v.spread, rng));
        continue;
      }
      const info: TypeInfo = typeInfo(s.type)!;
      // Whole blocks per chunk; float types also stay 4-byte aligned.
      const per = Math.floor(CHUNK / (info.blockBytes * 2)) * info.blockBytes * 2;
      for (const seg of s.rows!) {
        const filler = blockFiller(s.type, seg.std, rng, { signed: layout.init === 'wide' });
        const total = ((s.dims[0]! * seg.rows) / info.blockElems) * info.blockBytes;
        for (let done = 0; done < total; done += per) {
          const chunk = buf.subarray(0, Math.min(per, total - done));
          filler.fill(chunk);
          await w.write(s.name, chunk);
        }
      }
    }
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
  const bytes = (await stat(o.out)).size;
  return { path: o.out, bytes, arch, shape, layout, notes, tensors: specs.map((s) => ({ name: s.name, dims: s.dims, type: typeInfo(s.type)!.name })) };
}
