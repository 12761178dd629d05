// make-model --arch: per-family metadata keys and tensors (as llama.cpp's
// converter writes them and its loader requires), the wide init's scales,
// rope-scaling variants, presets and refusals. llama.cpp itself loads these
// models in scripts/check-synth-oracle.ts (not run here).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type LayerTensorNames, readConfig, tensorNames } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import type { GgufFile } from '../../src/gguf/types.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { Rng } from '../../src/synth/blocks.ts';
import { type MakeModelOptions, makeModel, resolveShape } from '../../src/synth/make-model.ts';
import { syntheticVocab } from '../../src/synth/vocab.ts';

const tmp = mkdtempSync(join(tmpdir(), 'qllm-synth-fam-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
async function make(o: Omit<MakeModelOptions, 'out'>): Promise<GgufFile> {
  const out = join(tmp, `m${seq++}.gguf`);
  await makeModel({ out, seed: 3, ...o });
  return openGguf(out);
}
async function floats(g: GgufFile, name: string): Promise<Float32Array> {
  const t = g.tensor(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return dequantize(t.type.id, await g.readTensor(t), t.nElements);
}
const stats = (w: Float32Array) => {
  let s = 0, s2 = 0, min = Infinity, max = -Infinity;
  for (const x of w) { s += x; s2 += x * x; min = Math.min(min, x); max = Math.max(max, x); }
  const mean = s / w.length;
  return { mean, std: Math.sqrt(s2 / w.length - mean * mean), min, max };
};

type L = keyof LayerTensorNames;
const PRE: L[] = ['attn_norm', 'ffn_norm'];
const QKV: L[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output'];
const GLU: L[] = ['ffn_gate', 'ffn_up', 'ffn_down'];
/** Per-layer tensors llama.cpp's loader creates for each family (src/models/<arch>.cpp), written out by hand. */
const LAYER: Record<string, L[]> = {
  llama: [...PRE, ...QKV, ...GLU],
  qwen2: [...PRE, ...QKV, 'attn_q_bias', 'attn_k_bias', 'attn_v_bias', ...GLU],
  qwen3: [...PRE, ...QKV, 'attn_q_norm', 'attn_k_norm', ...GLU],
  gemma: [...PRE, ...QKV, ...GLU],
  gemma2: [...PRE, ...QKV, 'attn_post_norm', 'ffn_post_norm', ...GLU],
  gemma3: [...PRE, ...QKV, 'attn_q_norm', 'attn_k_norm', 'attn_post_norm', 'ffn_post_norm', ...GLU],
  phi3: [...PRE, 'attn_qkv', 'attn_output', 'ffn_up', 'ffn_down'],
  granite: [...PRE, ...QKV, ...GLU],
  smollm3: [...PRE, ...QKV, ...GLU],
  olmo2: [...QKV, 'attn_q_norm', 'attn_k_norm', 'attn_post_norm', 'ffn_post_norm', ...GLU],
};

interface Want {
  layers: number; kvHeads: number; headDim: number; tied: boolean; theta: number; thetaKey: boolean;
  window?: number; pattern?: number | boolean[]; attnCap?: number; finalCap?: number; swaBase?: number;
  /** attn_q rows, q/k norm lengths, ffn_up rows. */
  q: number; qNorm?: number; kNorm?: number; up: number;
}
const W = (w: Partial<Want>): Want => ({ layers: 2, kvHeads: 2, headDim: 16, tied: false, theta: 10000, thetaKey: true, q: 64, up: 128, ...w });
const TINY: Record<string, Want> = {
  llama: W({}),
  qwen2: W({ theta: 1e6 }),
  qwen3: W({ headDim: 32, tied: true, theta: 1e6, q: 128, qNorm: 32, kNorm: 32 }),
  gemma: W({ kvHeads: 1, headDim: 32, tied: true, thetaKey: false, q: 128 }),
  gemma2: W({ headDim: 32, tied: true, thetaKey: false, q: 128, window: 16, attnCap: 10, finalCap: 60 }),
  gemma3: W({ layers: 4, headDim: 32, tied: true, theta: 1e6, q: 128, qNorm: 32, kNorm: 32, window: 16, pattern: 2, swaBase: 10000 }),
  phi3: W({ window: 16, q: 64 + 2 * 32, up: 256 }),
  granite: W({ tied: true }),
  smollm3: W({ layers: 4, tied: true, theta: 5e6 }),
  olmo2: W({ theta: 500000, qNorm: 64, kNorm: 32 }),
};

describe('make-model --arch: keys and tensors per family', () => {
  for (const [arch, want] of Object.entries(TINY)) {
    it(`${arch}: tiny f32`, async () => {
      const g = await make({ arch, type: 'f32' });
      const c = readConfig(g);
      expect([c.arch, c.dim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.valueDim, c.ffnDim, c.vocabSize, c.contextLength])
        .toEqual([arch, 64, want.layers, 4, want.kvHeads, want.headDim, want.headDim, 128, 512, 256]);
      expect(c.ropeTheta).toBe(want.theta);
      expect(g.kv.has(`${arch}.rope.freq_base`)).toBe(want.thetaKey);
      expect(c.slidingWindow).toBe(want.window);
      expect(c.slidingWindowPattern).toEqual(want.pattern);
      expect(c.attnSoftcap).toBe(want.attnCap);
      expect(c.finalSoftcap).toBe(want.finalCap);
      expect(c.ropeBaseSwa).toBe(want.swaBase);
      expect(c.ropeScaling.type).toBe('linear'); // no rope.scaling.type key: llama.cpp's default
      expect(c.tokenizer!.tokens.length).toBe(512);
      // Exactly the tensors llama.cpp creates, no more (it refuses unused tensors).
      const expected: string[] = [tensorNames.token_embd, tensorNames.output_norm, ...(want.tied ? [] : [tensorNames.output])];
      for (let i = 0; i < want.layers; i++) for (const k of LAYER[arch]!) expected.push(tensorNames.layer(i)[k]);
      expect(g.tensors.map((t) => t.name).sort()).toEqual(expected.sort());
      const l0 = tensorNames.layer(0);
      expect(g.tensor(tensorNames.token_embd)!.dims).toEqual([64, 512]);
      expect(g.tensor(arch === 'phi3' ? l0.attn_qkv : l0.attn_q)!.dims).toEqual([64, want.q]);
      expect(g.tensor(l0.attn_output)!.dims).toEqual([want.headDim * 4, 64]);
      expect(g.tensor(l0.ffn_up)!.dims).toEqual([64, want.up]);
      expect(g.tensor(l0.ffn_down)!.dims).toEqual([128, 64]);
      if (want.qNorm) expect(g.tensor(l0.attn_q_norm)!.dims).toEqual([want.qNorm]);
      if (want.kNorm) expect(g.tensor(l0.attn_k_norm)!.dims).toEqual([want.kNorm]);
      for (const t of g.tensors) expect(t.type.name, t.name).toBe('F32');
      await g.close();
    });
  }

  it('keys each converter writes or leaves out', async () => {
    const keys = async (o: Omit<MakeModelOptions, 'out'>) => { const g = await make(o); const k = [...g.kv.keys()]; await g.close(); return k; };
    const has = (ks: string[], a: string, k: string) => ks.includes(`${a}.${k}`);
    // LlamaModel subclasses (llama, granite, smollm3) write vocab_size and rope.dimension_count; Qwen and Gemma do not.
    for (const a of ['llama', 'granite', 'smollm3']) {
      const k = await keys({ arch: a });
      expect(has(k, a, 'vocab_size') && has(k, a, 'rope.dimension_count'), a).toBe(true);
      expect(has(k, a, 'attention.key_length'), a).toBe(false);
    }
    for (const a of ['qwen2', 'gemma', 'olmo2']) {
      const k = await keys({ arch: a });
      expect(has(k, a, 'vocab_size') || has(k, a, 'rope.dimension_count'), a).toBe(false);
    }
    // Gemma and Qwen3 always write the head size; Qwen2 never does.
    for (const a of ['gemma', 'gemma2', 'gemma3', 'qwen3']) expect(has(await keys({ arch: a }), a, 'attention.key_length'), a).toBe(true);
    expect(has(await keys({ arch: 'qwen2' }), 'qwen2', 'attention.key_length')).toBe(false);
    // Phi-3: original context and sliding window always; rope.dimension_count; no rope.scaling.type even with LongRoPE.
    const phi = await keys({ arch: 'phi3', ropeScaling: 'longrope' });
    for (const k of ['rope.scaling.original_context_length', 'attention.sliding_window', 'rope.dimension_count', 'rope.scaling.attn_factor']) expect(has(phi, 'phi3', k), k).toBe(true);
    expect(has(phi, 'phi3', 'rope.scaling.type')).toBe(false);
    // Gemma 3 without a final soft-cap writes none.
    expect(has(await keys({ arch: 'gemma3' }), 'gemma3', 'final_logit_softcapping')).toBe(false);
    expect(has(await keys({ arch: 'gemma3', swaPattern: 0 }), 'gemma3', 'attention.sliding_window_pattern')).toBe(false);
  });

  it('granite: logit_scale (required by llama.cpp), embedding/residual/attention scales', async () => {
    const g = await make({ arch: 'granite' });
    const c = readConfig(g);
    expect(c.logitScale).toBe(4);
    expect(c.embeddingScale).toBe(6);
    expect(c.residualScale).toBe(0.5);
    expect(c.attentionScale).toBeCloseTo(1 / 16, 7);
    await g.close();
  });

  it('olmo2 --sliding-window writes the Olmo3 per-layer pattern (every 4th layer full)', async () => {
    const g = await make({ arch: 'olmo2', layers: 8, slidingWindow: 32 });
    const c = readConfig(g);
    expect(c.slidingWindow).toBe(32);
    expect(c.slidingWindowPattern).toEqual([true, true, true, false, true, true, true, false]);
    await g.close();
  });

  it('k-quant tiny shapes: every matrix row a multiple of 256, head size ≠ dim/heads kept for qwen3/gemma', async () => {
    for (const arch of ['qwen3', 'gemma3', 'phi3', 'olmo2']) {
      const out = join(tmp, `k-${arch}.gguf`);
      const made = await makeModel({ out, arch, type: 'q4_k_m' });
      expect(made.notes, arch).toEqual([]);
      const g = await openGguf(out);
      const c = readConfig(g);
      expect(c.dim).toBe(256);
      expect(c.headDim * c.nHeads !== c.dim, arch).toBe(arch === 'qwen3' || arch === 'gemma3');
      expect(g.kv.get('general.file_type')!.value).toBe(15);
      const n1 = tensorNames.layer(c.nLayers - 1);
      // Tied output (token_embd) takes the output's Q6_K; attn_v (phi3: attn_qkv) and ffn_down of the last layer get Q6_K.
      expect(g.tensor(tensorNames.token_embd)!.type.name, arch).toBe(made.layout.tied ? 'Q6_K' : 'Q4_K');
      if (!made.layout.tied) expect(g.tensor(tensorNames.output)!.type.name).toBe('Q6_K');
      expect(g.tensor(arch === 'phi3' ? n1.attn_qkv : n1.attn_v)!.type.name).toBe('Q6_K');
      expect(g.tensor(n1.ffn_down)!.type.name).toBe('Q6_K');
      expect(g.tensor(tensorNames.layer(0).ffn_down)!.type.name).toBe('Q4_K');
      await g.close();
    }
  });
});

describe('make-model: wide init', () => {
  it('norms near 1 but spread; biases random; matrices scaled by row length', async () => {
    const g = await make({ arch: 'qwen2' });
    const l0 = tensorNames.layer(0);
    const n = stats(await floats(g, l0.attn_norm));
    expect(n.min).toBeGreaterThanOrEqual(0.75);
    expect(n.max).toBeLessThanOrEqual(1.25);
    expect(n.max - n.min).toBeGreaterThan(0.3); // a code path that skips the norm changes the output
    const b = stats(await floats(g, l0.attn_k_bias));
    expect(b.std).toBeGreaterThan(0.3);
    expect(b.std).toBeLessThan(0.7);
    // v: gain 1 → std 1/sqrt(64); q: gain sqrt(2) (q·k/sqrt(hd) ≈ N(0, 2²)).
    expect(stats(await floats(g, l0.attn_v)).std).toBeCloseTo(0.125, 1);
    expect(stats(await floats(g, l0.attn_q)).std / stats(await floats(g, l0.attn_v)).std).toBeCloseTo(Math.SQRT2, 1);
    expect(stats(await floats(g, l0.ffn_down)).std).toBeCloseTo(1 / Math.sqrt(128), 2);
    // The embedding is small next to the branch outputs: rms min(0.25, 1/sqrt(dim)) in the residual stream.
    expect(stats(await floats(g, tensorNames.token_embd)).std).toBeCloseTo(0.125, 2);
    await g.close();
    const gem = await make({ arch: 'gemma' }); // × sqrt(dim) at the input
    expect(stats(await floats(gem, tensorNames.token_embd)).std).toBeCloseTo(0.125 / 8, 3);
    await gem.close();
  });

  it('quantized weights have no common mean (half the blocks get negative scales)', async () => {
    for (const type of ['q4_0', 'q5_0', 'q3_k', 'iq4_nl', 'q6_k']) {
      const g = await make({ arch: 'qwen2', type, dim: 256, ffn: 512, heads: 4 });
      const w = stats(await floats(g, tensorNames.layer(0).ffn_up));
      // Unsigned blocks would give mean ≈ −0.05…−0.22 std (q4_0: −0.5·d with d = std/4.61).
      expect(Math.abs(w.mean) / w.std, type).toBeLessThan(0.02);
      expect(w.std, type).toBeCloseTo(1 / 16, 2);
      await g.close();
    }
  });

  // Logits of a unit-RMS hidden state h: (output_norm ∘ h) · W (÷ Granite's logit_scale), over the vocabulary.
  const cases: [string, Omit<MakeModelOptions, 'out'>, number][] = [
    ['qwen2 untied f32', { arch: 'qwen2' }, 1],
    ['gemma tied q8_0', { arch: 'gemma', type: 'q8_0' }, 1],
    ['granite tied q4_0', { arch: 'granite', type: 'q4_0' }, 4],
    ['smollm3 tied, logit-std 5', { arch: 'smollm3', logitStd: 5 }, 1],
  ];
  for (const [label, o, div] of cases) {
    it(`${label}: logits have std logitStd over the vocabulary`, async () => {
      const out = join(tmp, `wide-${label.replace(/\W+/g, '_')}.gguf`);
      const made = await makeModel({ out, seed: 5, ...o });
      const g = await openGguf(out);
      const c = readConfig(g);
      const gain = await floats(g, tensorNames.output_norm);
      const w = await floats(g, made.layout.tied ? tensorNames.token_embd : tensorNames.output);
      const rng = new Rng(9);
      const sds: number[] = [];
      for (let trial = 0; trial < 8; trial++) {
        const h = Float32Array.from({ length: c.dim }, () => (rng.float() * 2 - 1) * Math.sqrt(3));
        const logits = Array.from({ length: c.vocabSize }, (_, r) => {
          let s = 0;
          for (let i = 0; i < c.dim; i++) s += gain[i]! * h[i]! * w[r * c.dim + i]!;
          return s / div;
        });
        sds.push(stats(Float32Array.from(logits)).std);
      }
      const sd = sds.reduce((x, y) => x + y) / sds.length;
      expect(sd / made.layout.logitStd).toBeGreaterThan(0.8);
      expect(sd / made.layout.logitStd).toBeLessThan(1.25);
      expect(made.layout.logitStd).toBe(o.logitStd ?? 4 * Math.sqrt(2 * Math.log(512)));
      await g.close();
    });
  }

  it('a final soft-cap lowers the default logit std so the cap does not flatten the top', async () => {
    const made = await makeModel({ out: join(tmp, 'cap.gguf'), arch: 'gemma2', finalSoftcap: 30 });
    expect(made.layout.logitStd).toBeCloseTo((0.8 * 30) / Math.sqrt(2 * Math.log(512)), 6);
  });

  it('--init flat on a new family: every matrix std 0.02, norms 1 ± 0.05', async () => {
    const g = await make({ arch: 'qwen3', init: 'flat', std: 0.02 });
    expect(stats(await floats(g, tensorNames.layer(1).attn_q)).std).toBeCloseTo(0.02, 2);
    expect(stats(await floats(g, tensorNames.token_embd)).std).toBeCloseTo(0.02, 2);
    const n = stats(await floats(g, tensorNames.layer(0).attn_q_norm));
    expect(n.min).toBeGreaterThan(0.94);
    expect(n.max).toBeLessThan(1.06);
    await g.close();
  });
});

describe('make-model: rope options', () => {
  it('--rope-freqs: Llama 3 factors (llama-3.2-1b settings: 15 ones, 3 smoothed, 14 × 32)', async () => {
    const g = await make({ arch: 'llama', headDim: 64, heads: 4, dim: 256, ropeFreqs: true, ropeBase: 500000, ropeFactor: 32, ropeOrigCtx: 8192, ctx: 256, layers: 1 });
    const f = await floats(g, tensorNames.rope_freqs);
    expect(f.length).toBe(32);
    expect(Array.from(f.slice(0, 15))).toEqual(Array(15).fill(1));
    expect(Array.from(f.slice(18))).toEqual(Array(14).fill(32));
    for (let i = 15; i < 18; i++) { expect(f[i]).toBeGreaterThan(f[i - 1]!); expect(f[i]).toBeLessThan(32); }
    expect(g.kv.has('llama.rope.scaling.type')).toBe(false); // llama3 scaling lives in the tensor only
    await g.close();
  });

  it('--rope-scaling yarn / linear (llama, qwen2): type, factor, original context', async () => {
    let g = await make({ arch: 'qwen2', ropeScaling: 'yarn', ropeFactor: 4 });
    let c = readConfig(g);
    expect([c.ropeScaling.type, c.ropeScaling.factor, c.ropeScaling.originalContextLength]).toEqual(['yarn', 4, 64]);
    await g.close();
    g = await make({ arch: 'llama', ropeScaling: 'linear', ropeFactor: 2.5 });
    c = readConfig(g);
    expect([c.ropeScaling.type, c.ropeScaling.factor, c.ropeScaling.originalContextLength]).toEqual(['linear', 2.5, 0]);
    await g.close();
  });

  it('--rope-scaling longrope: factor tensors, attn_factor sqrt(1 + ln(ctx/orig)/ln(orig))', async () => {
    for (const arch of ['phi3', 'llama']) {
      const g = await make({ arch, ropeScaling: 'longrope', ropeOrigCtx: 64 });
      const c = readConfig(g);
      expect(c.ropeScaling.type).toBe(arch === 'phi3' ? 'linear' : 'longrope');
      expect(c.ropeScaling.originalContextLength).toBe(64);
      expect(c.ropeScaling.attnFactor).toBeCloseTo(Math.sqrt(4 / 3), 6); // ln 4 / ln 64 = 1/3
      const long = await floats(g, tensorNames.rope_factors_long);
      const short = await floats(g, tensorNames.rope_factors_short);
      expect([long.length, short.length]).toEqual([8, 8]);
      expect(long[0]).toBe(1);
      expect(long[7]).toBeGreaterThan(4);
      expect(short.every((x) => x >= 1 && x <= 1.5)).toBe(true);
      expect(short[7]).toBeGreaterThan(short[0]!);
      await g.close();
    }
  });

  it('llama --head-dim ≠ dim/heads writes key_length/value_length and rope.dimension_count = head size', async () => {
    const g = await make({ arch: 'llama', init: 'wide', headDim: 32, tied: true });
    const c = readConfig(g);
    expect([c.headDim, c.valueDim, c.ropeDim]).toEqual([32, 32, 32]);
    expect(g.tensor(tensorNames.layer(0).attn_q)!.dims).toEqual([64, 128]);
    expect(g.tensor(tensorNames.output)).toBeUndefined();
    await g.close();
  });
});

describe('make-model: presets and refusals', () => {
  it('real-shape presets (public configs)', () => {
    const s = (preset: string) => { const x = resolveShape({ out: '', preset }); return [x.dim, x.layers, x.heads, x.kvHeads, x.headDim, x.ffn, x.vocab, x.ctx]; };
    expect(s('qwen2.5-0.5b')).toEqual([896, 24, 14, 2, 64, 4864, 151936, 32768]);
    expect(s('qwen3-0.6b')).toEqual([1024, 28, 16, 8, 128, 3072, 151936, 40960]);
    expect(s('llama-3.2-1b')).toEqual([2048, 16, 32, 8, 64, 8192, 128256, 131072]);
    expect(s('gemma-2-2b')).toEqual([2304, 26, 8, 4, 256, 9216, 256000, 8192]);
    expect(s('phi-3.5-mini')).toEqual([3072, 32, 32, 32, 96, 8192, 32064, 131072]);
    // A preset's head size stays when only the layer count changes, and follows dim/heads when those change.
    expect(resolveShape({ out: '', preset: 'qwen3-0.6b', layers: 1 }).headDim).toBe(128);
    expect(resolveShape({ out: '', arch: 'qwen3', heads: 8 }).headDim).toBe(8);
  });

  it('the synthetic vocabulary reaches the presets\' sizes with distinct tokens', () => {
    const toks = syntheticVocab(256000).find((k) => k.key === 'tokenizer.ggml.tokens')!.value as { values: string[] };
    expect(toks.values.length).toBe(256000);
    expect(new Set(toks.values).size).toBe(256000);
  });

  it('refuses what llama.cpp would not load or the converter never writes', async () => {
    const bad = (o: Omit<MakeModelOptions, 'out'>, re: RegExp) => expect(makeModel({ out: join(tmp, 'bad.gguf'), ...o })).rejects.toThrow(re);
    await bad({ arch: 'mamba' }, /--arch mamba/);
    await bad({ arch: 'olmo2', tied: true }, /needs output.weight/);
    await bad({ arch: 'gemma2', tied: false }, /always ties/);
    await bad({ arch: 'qwen2', headDim: 32 }, /head size dim\/heads/);
    await bad({ arch: 'smollm3', ropeFreqs: true }, /rope_freqs/);
    await bad({ arch: 'qwen2', ropeScaling: 'longrope' }, /longrope/);
    await bad({ arch: 'phi3', ropeScaling: 'yarn' }, /yarn/);
    await bad({ arch: 'llama', ropeFreqs: true, ropeScaling: 'longrope' }, /exclude/);
    await bad({ arch: 'qwen2', std: 0.05 }, /--init flat/);
    await bad({ arch: 'qwen2', preset: 'gemma-2-2b' }, /gemma2 model/);
    await bad({ arch: 'llama', slidingWindow: 8 }, /sliding-window/);
    await bad({ arch: 'qwen2', ropeScaling: 'yarn', ropeOrigCtx: 1000 }, /rope-orig-ctx/);
    await expect(makeModel({ out: join(tmp, 'bad.gguf'), arch: 'qwen3', headDim: 15 })).rejects.toThrow(UsageError);
  });
});
