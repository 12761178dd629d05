// The float64 reference against llama.cpp itself (node-llama-cpp's prebuilt
// CPU backend) on tiny hand-built F32 GGUFs of every family, each switching on
// the family's quirks at once: llama.cpp evaluates the prompt in one batch
// with an F32 KV cache and returns the next-token distribution after every
// position; the reference's log-softmax must match it everywhere. Skipped when
// node-llama-cpp or its prebuilt binary is unavailable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlledEvaluateInputItem, Token } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufValueType } from '../../src/gguf/types.ts';
import { kv } from '../../src/gguf/writer.ts';
import { ReferenceModel, logSoftmax } from './reference.ts';
import { type TinySpec, tinyModel } from './reference-tiny.ts';

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
type Llama = Awaited<ReturnType<typeof import('node-llama-cpp')['getLlama']>>;
async function loadLlama(): Promise<Llama | undefined> {
  try {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
  } catch (e) {
    console.warn(`[reference-llamacpp] node-llama-cpp unavailable, skipped: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
}
const llama = await loadLlama();
const dir = mkdtempSync(join(tmpdir(), 'qllm-ref-llamacpp-'));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await llama?.dispose();
});

/** node-llama-cpp rounds a context up to 256 tokens: n_ctx_seq, which picks LongRoPE's factors. */
const CTX = 256;
const TOKENS = [5, 77, 130, 9, 200, 41, 3, 250, 66, 12, 181, 99];

interface Case { name: string; spec: TinySpec; tol: number }
const a = (arch: string, k: string) => `${arch}.${k}`;
const factors = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
// The reference runs GELU through ggml-cpu's f16 table here (ggmlCpuGelu): exact GELU differs from llama.cpp's CPU output by ~1e-3.
const CASES: Case[] = [
  {
    name: 'llama: GQA 4/2, rope_freqs, linear ×2',
    spec: { arch: 'llama', dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 48, seed: 11, extra: [kv.str(a('llama', 'rope.scaling.type'), 'linear'), kv.f32(a('llama', 'rope.scaling.factor'), 2)], addTensors: { 'rope_freqs.weight': factors(4, (i) => 1 + i * 1.5) } },
    tol: 2e-5,
  },
  {
    // llama.cpp's qwen2 loader reads none of the yarn_* keys: they must change nothing.
    name: 'qwen2: q/k/v biases, tied output, YaRN ×4 (yarn_log_multiplier, yarn_beta_fast keys ignored)',
    spec: {
      arch: 'qwen2', dim: 32, layers: 2, heads: 2, kvHeads: 1, ffn: 40, seed: 12, output: false, ctx: 4096, ropeBase: 1000,
      extra: [kv.str(a('qwen2', 'rope.scaling.type'), 'yarn'), kv.f32(a('qwen2', 'rope.scaling.factor'), 4), kv.u32(a('qwen2', 'rope.scaling.original_context_length'), 1024), kv.f32(a('qwen2', 'rope.scaling.yarn_log_multiplier'), 0.5), kv.f32(a('qwen2', 'rope.scaling.yarn_beta_fast'), 8)],
    },
    tol: 2e-5,
  },
  { name: 'qwen3: per-head q/k norm, key_length 16 ≠ dim/heads', spec: { arch: 'qwen3', dim: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 48, seed: 13 }, tol: 2e-5 },
  { name: 'gemma: √dim embedding, GeGLU, tied', spec: { arch: 'gemma', dim: 32, layers: 2, heads: 2, kvHeads: 1, ffn: 48, seed: 14 }, tol: 2e-4 },
  {
    name: 'gemma2: soft-caps, window 3 on even layers, freq_base_swa, linear ×2 on every layer',
    spec: {
      arch: 'gemma2', dim: 32, layers: 3, heads: 2, kvHeads: 1, ffn: 48, seed: 15, std: 0.4,
      extra: [
        kv.f32(a('gemma2', 'attn_logit_softcapping'), 1.5), kv.f32(a('gemma2', 'final_logit_softcapping'), 4), kv.u32(a('gemma2', 'attention.sliding_window'), 3), kv.f32(a('gemma2', 'rope.freq_base_swa'), 100),
        kv.str(a('gemma2', 'rope.scaling.type'), 'linear'), kv.f32(a('gemma2', 'rope.scaling.factor'), 2),
      ],
    },
    tol: 2e-4,
  },
  {
    // 46 layers is Gemma 2 27B to llama.cpp: q is scaled by 1/sqrt(dim/heads) = 1/sqrt(8), not 1/sqrt(key_length 16).
    // No soft-cap or window keys: the defaults 50, 30 and 4096 apply.
    name: 'gemma2: the 27B attention scale (46 layers), default soft-caps and window',
    // Small weights keep 46 layers of f16-table GELU rounding from compounding (1/sqrt(16) would be off by ~0.6).
    spec: { arch: 'gemma2', dim: 16, layers: 46, heads: 2, kvHeads: 1, headDim: 16, ffn: 16, seed: 24, std: 0.15 },
    tol: 5e-4,
  },
  {
    name: 'gemma3: local/global RoPE (base 100 / linear ×4), attn_factor, window 3, final cap',
    spec: {
      arch: 'gemma3', dim: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 16, ffn: 48, seed: 16, std: 0.4,
      extra: [
        kv.u32(a('gemma3', 'attention.sliding_window'), 3), kv.u32(a('gemma3', 'attention.sliding_window_pattern'), 2), kv.f32(a('gemma3', 'rope.freq_base_swa'), 100),
        kv.str(a('gemma3', 'rope.scaling.type'), 'linear'), kv.f32(a('gemma3', 'rope.scaling.factor'), 4), kv.f32(a('gemma3', 'rope.scaling.attn_factor'), 1.25), kv.f32(a('gemma3', 'final_logit_softcapping'), 6),
      ],
    },
    tol: 2e-4,
  },
  ...(['long', 'short'] as const).map((which): Case => ({
    name: `phi3: fused qkv and gate|up, partial rotary 4/8, LongRoPE ${which} factors (no type key, as converted files)`,
    spec: {
      arch: 'phi3', dim: 32, layers: 2, heads: 4, kvHeads: 4, ffn: 40, ropeDim: 4, seed: 17, ctx: 4096,
      extra: [kv.u32(a('phi3', 'rope.scaling.original_context_length'), which === 'long' ? 128 : 512), kv.f32(a('phi3', 'rope.scaling.attn_factor'), 1.19), kv.u32(a('phi3', 'attention.sliding_window'), 2)],
      addTensors: { 'rope_factors_long.weight': factors(2, (i) => 3 + 5 * i), 'rope_factors_short.weight': factors(2, (i) => 1 + 0.5 * i) },
    },
    tol: 2e-5,
  })),
  {
    name: 'granite: embedding/residual/attention/logit scales',
    spec: {
      arch: 'granite', dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 48, seed: 18,
      extra: [kv.f32(a('granite', 'embedding_scale'), 3), kv.f32(a('granite', 'residual_scale'), 0.5), kv.f32(a('granite', 'attention.scale'), 0.2), kv.f32(a('granite', 'logit_scale'), 4)],
    },
    tol: 2e-5,
  },
  { name: 'smollm3: layer 3 without RoPE', spec: { arch: 'smollm3', dim: 32, layers: 4, heads: 4, kvHeads: 2, ffn: 48, seed: 19 }, tol: 2e-5 },
  {
    // A bool-array pattern is ignored by llama.cpp's scalar get_key_or_arr: the default period 4 makes layers 0-2 slide.
    // Their RoPE is unscaled (scale 1, attn_factor 1) and keeps the global base despite freq_base_swa.
    name: 'olmo2: post-norms only, whole-vector q/k norm, window 3 (flag array ignored), unscaled RoPE on sliding layers',
    spec: {
      arch: 'olmo2', dim: 32, layers: 4, heads: 4, kvHeads: 2, ffn: 48, seed: 20, std: 0.4,
      extra: [
        kv.u32(a('olmo2', 'attention.sliding_window'), 3), kv.array(a('olmo2', 'attention.sliding_window_pattern'), GgufValueType.BOOL, [true, false, false, false]), kv.f32(a('olmo2', 'rope.freq_base_swa'), 100),
        kv.str(a('olmo2', 'rope.scaling.type'), 'linear'), kv.f32(a('olmo2', 'rope.scaling.factor'), 2), kv.f32(a('olmo2', 'rope.scaling.attn_factor'), 1.1),
      ],
    },
    tol: 2e-5,
  },
];

describe.skipIf(!llama)('float64 reference vs llama.cpp (node-llama-cpp, CPU, F32 KV)', () => {
  it.each(CASES)('$name', async ({ name, spec, tol }) => {
    const t = await tinyModel(spec);
    const path = join(dir, `${spec.arch}-${spec.seed}.gguf`);
    writeFileSync(path, t.bytes);
    const model = await llama!.loadModel({ modelPath: path });
    try {
      const ctx = await model.createContext({ contextSize: CTX, batchSize: CTX, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', threads: 1 });
      const seq = ctx.getSequence();
      const out = await seq.controlledEvaluate(TOKENS.map((tk): ControlledEvaluateInputItem => [tk as Token, { generateNext: { probabilities: true } }]));
      const ref = new ReferenceModel(t.config, t.weights, { contextLength: CTX, ggmlCpuGelu: true });
      const want = ref.run(TOKENS, 0);
      let worst = 0;
      for (let i = 0; i < TOKENS.length; i++) {
        const probs = out[i]?.next.probabilities;
        if (!probs) throw new Error(`${name}: llama.cpp returned no probabilities at position ${i}`);
        expect(probs.size).toBe(t.config.vocabSize);
        const lp = logSoftmax(want[i]);
        for (const [tok, p] of probs) worst = Math.max(worst, Math.abs(Math.log(p) - lp[tok]));
      }
      console.log(`${name}: max |Δ log p| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(tol);
      await ctx.dispose();
    } finally {
      await model.dispose();
    }
  });
});
