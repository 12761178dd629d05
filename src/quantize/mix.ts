// Which ggml type each tensor gets, following llama.cpp's llama-quant.cpp
// (llama_model_quantize_impl's "quantize this tensor?" test and
// llama_tensor_get_type's per-tensor rules, without an importance matrix),
// so that `qllm quantize in out Q4_K_M` picks the same types llama-quantize does.
import { UsageError } from '../errors.ts';
import { GgmlType, typeInfo } from '../quant/table.ts';

/** A target: llama.cpp's file type (general.file_type) and its default tensor type. */
export interface Target {
  readonly name: string;
  /** llama_ftype value written to general.file_type. */
  readonly ftype: number;
  readonly base: GgmlType;
  /** Canonical llama.cpp name when `name` is an alias (Q4_K → Q4_K_M). */
  readonly aliasOf?: string;
}

const T = (name: string, ftype: number, base: GgmlType, aliasOf?: string): Target => ({ name, ftype, base, aliasOf });

/** Targets by upper-case name; Q3_K/Q4_K/Q5_K are llama-quantize's aliases for the _M mixes. */
export const TARGETS: readonly Target[] = [
  T('F16', 1, GgmlType.F16),
  T('BF16', 32, GgmlType.BF16),
  T('Q8_0', 7, GgmlType.Q8_0),
  T('Q4_0', 2, GgmlType.Q4_0),
  T('Q4_1', 3, GgmlType.Q4_1),
  T('Q5_0', 8, GgmlType.Q5_0),
  T('Q5_1', 9, GgmlType.Q5_1),
  T('Q2_K', 10, GgmlType.Q2_K),
  T('Q3_K_M', 12, GgmlType.Q3_K),
  T('Q3_K', 12, GgmlType.Q3_K, 'Q3_K_M'),
  T('Q4_K_S', 14, GgmlType.Q4_K),
  T('Q4_K_M', 15, GgmlType.Q4_K),
  T('Q4_K', 15, GgmlType.Q4_K, 'Q4_K_M'),
  T('Q5_K_S', 16, GgmlType.Q5_K),
  T('Q5_K_M', 17, GgmlType.Q5_K),
  T('Q5_K', 17, GgmlType.Q5_K, 'Q5_K_M'),
  T('Q6_K', 18, GgmlType.Q6_K),
  T('IQ4_NL', 25, GgmlType.IQ4_NL),
  T('IQ4_XS', 30, GgmlType.IQ4_XS),
  // Expert tensors (3-D, ne[2] > 1) MXFP4, every other quantized tensor Q8_0.
  T('MXFP4_MOE', 38, GgmlType.MXFP4),
];

export function targetByName(name: string): Target {
  const up = name.toUpperCase();
  const t = TARGETS.find((x) => x.name === up);
  if (!t) throw new UsageError(`unknown quantization type '${name}': use one of ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}

/** Model facts the rules need (counted over the whole file before choosing). */
export interface MixContext {
  readonly target: Target;
  /** --pure: every quantized tensor gets the base type (fallbacks still apply). */
  readonly pure: boolean;
  readonly hasOutput: boolean;
  readonly nAttnV: number;
  readonly nFfnDown: number;
  /** n_head / n_head_kv (1 if unknown). */
  readonly nGqa: number;
  /** Running counters, advanced in tensor order like llama.cpp's qs.i_*. */
  iAttnV: number;
  iFfnDown: number;
}

export function mixContext(target: Target, tensors: readonly { name: string; dims: readonly number[] }[], nGqa: number, pure = false): MixContext {
  const names = tensors.map((t) => t.name);
  return {
    target,
    pure,
    hasOutput: names.includes('output.weight'),
    nAttnV: names.filter((n) => n.includes('attn_v.weight')).length,
    nFfnDown: names.filter((n) => n.includes('ffn_down')).length,
    nGqa,
    iAttnV: 0,
    iFfnDown: 0,
  };
}

/** llama.cpp's quantize filter: 2-D+ tensors named *weight, except norms and a few special ones. */
export function shouldQuantize(name: string, dims: readonly number[]): boolean {
  return (
    name.endsWith('weight') &&
    dims.filter((d) => d > 1).length >= 2 &&
    !name.includes('_norm.weight') &&
    !name.includes('ffn_gate_inp.weight') &&
    !name.includes('ssm_conv1d.weight') &&
    !name.includes('attn_rel_b.weight') &&
    name !== 'position_embd.weight' &&
    name !== 'token_types.weight'
  );
}

// More bits for the first and last eighth of the layers and every third one between.
const useMoreBits = (i: number, n: number): boolean => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

export interface Choice {
  readonly type: GgmlType;
  /** Set when the row length forced a fallback type. */
  readonly note?: string;
}

/**
 * The type of one quantizable tensor (call in file order: the counters
 * advance). ggml-quantized bases get llama.cpp's per-tensor rules; F16/BF16
 * targets apply to every quantizable tensor as is.
 */
export function chooseType(ctx: MixContext, name: string, dims: readonly number[]): Choice {
  const ft = ctx.target.aliasOf ?? ctx.target.name;
  let t = ctx.target.base;
  const quantized = t !== GgmlType.F16 && t !== GgmlType.BF16;
  if (!quantized) return { type: t };
  const nx = dims[0];
  if (ft === 'MXFP4_MOE' && !ctx.pure) {
    // llama-quant.cpp: the output (or tied embedding) Q8_0, then MoE tensors MXFP4, others Q8_0.
    const expert = (dims[2] ?? 1) > 1 && name !== 'output.weight' && (ctx.hasOutput || name !== 'token_embd.weight');
    return fallback(expert ? GgmlType.MXFP4 : GgmlType.Q8_0, nx);
  }
  if (name === 'output.weight' || (!ctx.hasOutput && name === 'token_embd.weight')) {
    if (!ctx.pure) {
      if (nx % (typeInfo(t)?.blockElems ?? 1) !== 0) t = GgmlType.Q8_0;
      else if (t !== GgmlType.Q8_0) t = GgmlType.Q6_K;
    }
  } else if (name === 'token_embd.weight') {
    // No rule for the non-IQ1/IQ2 targets: the base type.
  } else if (name.includes('attn_v.weight')) {
    if (!ctx.pure) {
      const i = ctx.iAttnV;
      if (ft === 'Q2_K') t = ctx.nGqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
      else if (ft === 'Q3_K_M') t = i < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
      else if ((ft === 'IQ4_NL' || ft === 'IQ4_XS') && ctx.nGqa >= 4) t = GgmlType.Q5_K;
      else if ((ft === 'Q4_K_M' || ft === 'Q5_K_M') && useMoreBits(i, ctx.nAttnV)) t = GgmlType.Q6_K;
      else if (ft === 'Q4_K_S' && i < 4) t = GgmlType.Q5_K;
    }
    ctx.iAttnV++;
  } else if (name.includes('ffn_down')) {
    if (!ctx.pure) {
      const m = /^blk\.(\d+)\./.exec(name);
      const i = m ? Number(m[1]) : ctx.iFfnDown;
      const n = ctx.nFfnDown;
      if (ft === 'Q2_K') t = GgmlType.Q3_K;
      else if (ft === 'Q3_K_M') t = i < Math.trunc(n / 16) ? GgmlType.Q5_K : GgmlType.Q4_K;
      else if (ft === 'Q4_K_M') {
        if (useMoreBits(i, n)) t = GgmlType.Q6_K;
      } else if (i < Math.trunc(n / 8) && (ft === 'IQ4_NL' || ft === 'IQ4_XS')) t = GgmlType.Q5_K;
      else if (ft === 'Q5_K_M' && useMoreBits(i, n)) t = GgmlType.Q6_K;
      else if (ft === 'Q4_K_S' && i < Math.trunc(n / 8)) t = GgmlType.Q5_K;
    }
    ctx.iFfnDown++;
  } else if (name.includes('attn_output.weight')) {
    if (!ctx.pure) {
      if (ft === 'Q2_K') t = GgmlType.Q3_K;
      else if (ft === 'Q3_K_M') t = GgmlType.Q4_K;
    }
  } else if (name.includes('attn_qkv.weight')) {
    if (!ctx.pure) {
      if (ft === 'Q3_K_M') t = GgmlType.Q4_K;
      else if (ft === 'Q4_K_M') t = GgmlType.Q5_K;
      else if (ft === 'Q5_K_M') t = GgmlType.Q6_K;
    }
  }
  return fallback(t, nx);
}

/** llama.cpp's fallback when the row length is not a multiple of the block size. */
export function fallback(t: GgmlType, nx: number): Choice {
  const info = typeInfo(t)!;
  if (nx % info.blockElems === 0) return { type: t };
  const alt: Partial<Record<GgmlType, GgmlType>> = {
    [GgmlType.Q2_K]: GgmlType.IQ4_NL,
    [GgmlType.Q3_K]: GgmlType.IQ4_NL,
    [GgmlType.IQ4_XS]: GgmlType.IQ4_NL,
    [GgmlType.Q4_K]: GgmlType.Q5_0,
    [GgmlType.Q5_K]: GgmlType.Q5_1,
    [GgmlType.Q6_K]: GgmlType.Q8_0,
  };
  let f = alt[t] ?? GgmlType.F16;
  if (nx % typeInfo(f)!.blockElems !== 0) f = GgmlType.F16;
  return { type: f, note: `${nx} columns are not a multiple of ${info.blockElems} (${info.name}); using ${typeInfo(f)!.name}` };
}
