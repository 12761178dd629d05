// The per-layer numbers the reference derives itself from the Config, the way
// llama.cpp's loaders and context set them (src/models/<arch>.cpp
// load_arch_hparams, llama-model.cpp, llama-context.cpp), instead of taking
// them from planModel: which layers slide and by how much, each layer's RoPE
// arguments, and which per-pair factor tensor feeds RoPE. These are the places
// where llama.cpp's behaviour is least obvious from the GGUF keys (see the
// notes on each function); reference-llamacpp.test.ts checks them against
// llama.cpp itself and reference-plan.test.ts compares planModel with them.
import { type Config, tensorNames } from '../../src/config.ts';
import type { RopeParams } from '../../src/models/family.ts';

/**
 * Sliding window of each layer (0: full attention), llama.cpp's
 * set_swa_pattern(period, dense_first = false): layer il slides when
 * period == 0 or il % period < period − 1.
 *  - gemma2 always slides (window default 4096, period default 2);
 *  - gemma3 and olmo2 only when attention.sliding_window > 0 (period defaults 6 and 4);
 *  - gpt-oss (openai-moe.cpp): the window is a required key, period default 2;
 *  - phi3 reads a window but disables it ("Phi SWA is currently disabled"); the rest never slide.
 * The period key is read with get_key_or_arr into a scalar, which returns
 * "not found" for an ARRAY value: a per-layer bool array (as OLMo 3's
 * converter writes) is ignored and the default period applies.
 */
export function llamaCppWindows(c: Config): number[] {
  const defaults: Record<string, { window: number; period: number; needsKey: boolean }> = {
    gemma2: { window: 4096, period: 2, needsKey: false },
    gemma3: { window: 0, period: 6, needsKey: true },
    olmo2: { window: 0, period: 4, needsKey: true },
    'gpt-oss': { window: 0, period: 2, needsKey: true },
  };
  const d = defaults[c.arch];
  const out = new Array<number>(c.nLayers).fill(0);
  if (!d || (d.needsKey && !(c.slidingWindow && c.slidingWindow > 0))) return out;
  const window = c.slidingWindow ?? d.window;
  const period = typeof c.slidingWindowPattern === 'number' ? c.slidingWindowPattern : d.period;
  for (let il = 0; il < c.nLayers; il++) if (period === 0 || il % period < period - 1) out[il] = window;
  return out;
}

/** Archs whose graph hands get_rope_factors' tensor to ggml_rope_ext (llama.cpp, granite.cpp, phi3.cpp); the rest pass nullptr. */
const FACTOR_ARCHS = new Set(['llama', 'granite', 'phi3']);

/**
 * Which per-pair divisor tensor llama.cpp feeds RoPE (llama_model::get_rope_factors):
 * rope_freqs when loaded, else LongRoPE's long factors when the context
 * (n_ctx_seq) exceeds the original one (n_ctx_orig_yarn), else the short ones.
 * llama and granite load long/short only for rope.scaling.type = longrope;
 * phi3 always loads them — its converted GGUFs carry the factors and
 * rope.scaling.attn_factor but no rope.scaling.type key.
 */
export function ropeFactorKind(c: Config, has: (name: string) => boolean, contextLength: number): RopeParams['factors'] {
  if (!FACTOR_ARCHS.has(c.arch)) return 'none';
  if (has(tensorNames.rope_freqs)) return 'freqs';
  if (c.arch !== 'phi3' && c.ropeScaling.type !== 'longrope') return 'none';
  const kind = contextLength > (c.ropeScaling.originalContextLength || c.contextLength) ? 'long' : 'short';
  return has(kind === 'long' ? tensorNames.rope_factors_long : tensorNames.rope_factors_short) ? kind : 'none';
}

/** YaRN's get_mscale (llama-context.cpp). */
const mscaleOf = (scale: number, m: number) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

/**
 * The ggml_rope_ext arguments of a layer. The context's (llama-context.cpp):
 * freq_scale = 1/factor (1 for type none); ext_factor 1 for yarn, else 0;
 * yarn_attn_factor = get_mscale(factor) / (1 + 0.1·ln factor) — the division
 * cancels the factor ggml's rope_yarn multiplies in again — times
 * rope.scaling.attn_factor. beta_fast 32, beta_slow 1, no log multiplier:
 * none of these families' loaders reads rope.scaling.yarn_ext_factor,
 * yarn_beta_fast/slow or yarn_log_multiplier (only deepseek2, grok, mistral3
 * and kin do), so such keys in the file change nothing.
 * Sliding-window layers, per arch:
 *  - gemma2: base = rope.freq_base_swa (default: the global base), the trained scale, the global YaRN values;
 *  - gemma3: base = rope.freq_base_swa (default 10000), scale 1, but the graph still passes the global ext_factor and attn_factor;
 *  - olmo2:  the global base, scale 1, ext_factor 0, attn_factor 1 (olmo2.cpp's explicit arguments);
 *  - gpt-oss: base = rope.freq_base_swa (default: the global base), the trained scale and YaRN values.
 */
export function llamaCppRope(c: Config, swa: boolean, factors: RopeParams['factors']): RopeParams {
  const s = c.ropeScaling;
  const freqScale = s.type === 'none' ? 1 : 1 / s.factor;
  const extFactor = s.type === 'yarn' ? 1 : 0;
  let attnFactor = 1;
  if (extFactor !== 0) attnFactor = mscaleOf(1 / freqScale, 1) / (1 + 0.1 * Math.log(1 / freqScale));
  attnFactor *= s.attnFactor;
  const g: RopeParams = { base: c.ropeTheta, freqScale, extFactor, attnFactor, betaFast: 32, betaSlow: 1, origContext: s.originalContextLength || c.contextLength, factors };
  if (!swa) return g;
  if (c.arch === 'gemma2') return { ...g, base: c.ropeBaseSwa ?? c.ropeTheta, freqScale: 1 / s.factor };
  if (c.arch === 'gemma3') return { ...g, base: c.ropeBaseSwa ?? 10000, freqScale: 1 };
  if (c.arch === 'olmo2') return { ...g, freqScale: 1, extFactor: 0, attnFactor: 1 };
  if (c.arch === 'gpt-oss') return { ...g, base: c.ropeBaseSwa ?? c.ropeTheta };
  return g;
}
