// planModel (src/models/family.ts) against the windows and RoPE arguments the
// reference derives the way llama.cpp does (reference-hparams.ts, itself
// checked against llama.cpp in reference-llamacpp.test.ts). Where they agree,
// the GPU model (which runs the plan) and the reference run the same model.
// The cases after AGREE are planModel's former deviations from llama.cpp,
// each explained at its case; they pin the fixes.
import { describe, expect, it } from 'vitest';
import type { Config, RopeScaling } from '../../src/config.ts';
import { tensorNames } from '../../src/config.ts';
import { planModel } from '../../src/models/family.ts';
import { llamaCppRope, llamaCppWindows, ropeFactorKind } from './reference-hparams.ts';
import { tinyModel } from './reference-tiny.ts';

const base = (await tinyModel({ arch: 'llama', dim: 16, layers: 6, heads: 2, kvHeads: 1, ffn: 8 })).config;

interface Case {
  name: string;
  arch: string;
  over?: Partial<Config>;
  scaling?: Partial<RopeScaling>;
  tensors?: string[];
  ctx?: number;
}

function compare({ arch, over, scaling, tensors = [], ctx = 4096 }: Case) {
  const c: Config = { ...base, arch, contextLength: 8192, ...over, ropeScaling: { ...base.ropeScaling, ...scaling } };
  const has = (n: string) => tensors.includes(n);
  const plan = planModel(c, ctx, has, 'test');
  const windows = llamaCppWindows(c);
  expect(plan.layers.map((l) => l.window)).toEqual(windows);
  const kind = ropeFactorKind(c, has, ctx);
  plan.layers.forEach((l, il) => {
    if (l.rope < 0) return;
    const want = llamaCppRope(c, windows[il] > 0, kind);
    const got = plan.ropes[l.rope];
    expect({ ...got, attnFactor: 0 }).toEqual({ ...want, attnFactor: 0 });
    expect(got.attnFactor).toBeCloseTo(want.attnFactor, 12);
  });
}

const AGREE: Case[] = [
  { name: 'llama, no scaling', arch: 'llama' },
  { name: 'llama, rope_freqs + linear ×8', arch: 'llama', scaling: { type: 'linear', factor: 8 }, tensors: [tensorNames.rope_freqs] },
  { name: 'llama, longrope type, context above the original', arch: 'llama', scaling: { type: 'longrope', originalContextLength: 2048 }, tensors: [tensorNames.rope_factors_long, tensorNames.rope_factors_short] },
  { name: 'qwen3, YaRN ×4 over 32768', arch: 'qwen3', scaling: { type: 'yarn', factor: 4, originalContextLength: 32768 } },
  { name: 'qwen2, YaRN with rope.scaling.attn_factor', arch: 'qwen2', scaling: { type: 'yarn', factor: 4, originalContextLength: 4096, attnFactor: 1.2 } },
  { name: 'gemma2, no window keys (4096 every other layer)', arch: 'gemma2' },
  { name: 'gemma2, window 3, period 3, freq_base_swa, linear ×2', arch: 'gemma2', over: { slidingWindow: 3, slidingWindowPattern: 3, ropeBaseSwa: 100 }, scaling: { factor: 2 } },
  { name: 'gemma3, window 512, default period 6, linear ×8', arch: 'gemma3', over: { slidingWindow: 512, ropeTheta: 1e6 }, scaling: { factor: 8 } },
  { name: 'gemma3, no window key (all global)', arch: 'gemma3' },
  { name: 'olmo2, window 4096, OLMo 3 flags (= period 4), YaRN', arch: 'olmo2', over: { slidingWindow: 4096, slidingWindowPattern: [true, true, true, false, true, true] }, scaling: { type: 'yarn', factor: 8, originalContextLength: 8192 } },
  { name: 'phi3 4k: sliding_window set but disabled', arch: 'phi3', over: { slidingWindow: 2047 } },
  { name: 'phi3, explicit longrope type, short factors', arch: 'phi3', scaling: { type: 'longrope', originalContextLength: 8192 }, tensors: [tensorNames.rope_factors_long, tensorNames.rope_factors_short] },
  { name: 'phi3, LongRoPE factors, context equal to the original (short)', arch: 'phi3', scaling: { type: 'longrope', originalContextLength: 4096 }, tensors: [tensorNames.rope_factors_long, tensorNames.rope_factors_short] },
  { name: "llama, scaling type 'none' with a factor (ignored)", arch: 'llama', scaling: { type: 'none', factor: 4 } },
  { name: 'llama with a sliding_window key (llama.cpp ignores it)', arch: 'llama', over: { slidingWindow: 4096 } },
  { name: 'smollm3 (NoPE every 4th layer)', arch: 'smollm3' },
  { name: 'granite', arch: 'granite', over: { attentionScale: 0.015625, embeddingScale: 12, residualScale: 0.22, logitScale: 8 } },
];

describe('planModel vs llama.cpp windows and RoPE arguments', () => {
  it.each(AGREE)('$name', (c) => compare(c));

  // Phi-3 128k / Phi-3.5 GGUFs carry rope_factors_long/short and rope.scaling.attn_factor but no
  // rope.scaling.type; llama.cpp's phi3 graph applies the factors anyway (long when the context exceeds
  // rope.scaling.original_context_length). planModel once used them only for type 'longrope'.
  it('was a deviation: phi3 LongRoPE factors without a rope.scaling.type key', () =>
    compare({ name: '', arch: 'phi3', scaling: { originalContextLength: 2048, attnFactor: 1.19 }, tensors: [tensorNames.rope_factors_long, tensorNames.rope_factors_short] }));

  // None of these families' loaders reads rope.scaling.yarn_log_multiplier / yarn_ext_factor /
  // yarn_beta_fast / yarn_beta_slow (only deepseek2, grok, mistral3...): llama.cpp uses 0 / 1 / 32 / 1.
  it('was a deviation: YaRN keys llama.cpp ignores for these archs (log multiplier)', () =>
    compare({ name: '', arch: 'qwen2', scaling: { type: 'yarn', factor: 4, originalContextLength: 4096, yarnLogMul: 0.5 } }));
  it('was a deviation: YaRN keys llama.cpp ignores for these archs (beta_fast, ext_factor)', () =>
    compare({ name: '', arch: 'llama', scaling: { type: 'yarn', factor: 4, originalContextLength: 4096, yarnBetaFast: 8, yarnExtFactor: 0.5 } }));

  // gemma2/gemma3/olmo2 read sliding_window_pattern with the scalar get_key_or_arr, which ignores an
  // array: the default period applies. (OLMo 3's converted flags happen to equal period 4.)
  it('was a deviation: a per-layer bool sliding_window_pattern that differs from the default period', () =>
    compare({ name: '', arch: 'olmo2', over: { slidingWindow: 3, slidingWindowPattern: [true, false, true, false, true, false] } }));

  // gemma3.cpp passes the global ext_factor and attn_factor to its sliding layers too (only base and
  // scale are per layer), so rope.scaling.attn_factor scales their cos/sin as well.
  it('was a deviation: gemma3 sliding layers keep the global attn_factor', () =>
    compare({ name: '', arch: 'gemma3', over: { slidingWindow: 512 }, scaling: { factor: 8, attnFactor: 1.25 } }));

  // granite.cpp fills rope_pattern with rope.scaling.finetuned (default true): false means no RoPE anywhere.
  it('granite with rope.scaling.finetuned = false has no RoPE on any layer; true or absent keeps it', () => {
    const c = (ropeFinetuned: boolean | undefined): Config => ({ ...base, arch: 'granite', ropeFinetuned });
    expect(planModel(c(false), 4096, () => false, 'test').layers.map((l) => l.rope)).toEqual(base.nLayers ? Array(base.nLayers).fill(-1) : []);
    expect(planModel(c(true), 4096, () => false, 'test').layers.every((l) => l.rope === 0)).toBe(true);
    expect(planModel(c(undefined), 4096, () => false, 'test').layers.every((l) => l.rope === 0)).toBe(true);
    // Only Granite reads it: a llama file's false changes nothing.
    expect(planModel({ ...c(false), arch: 'llama' }, 4096, () => false, 'test').layers.every((l) => l.rope === 0)).toBe(true);
  });
});
