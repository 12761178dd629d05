// Perplexity and KL divergence: exact values on fake models, then the real
// stories260K f32 vs q8_0 vs q4_0 on the shared sampled text.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { perplexity, type PplModel } from '../src/perplexity.ts';
import { qllm } from './cli/helpers.ts';
import { hasShared, sharedModel, sharedRef } from './shared.ts';

/** A model whose logits are a fixed function of the position's next token. */
function fake(vocab: number, logit: (pos: number, v: number) => number, ctx = 64): PplModel & { calls: number[][] } {
  const calls: number[][] = [];
  return {
    contextLength: ctx,
    calls,
    async forward(tokens: number[], pos: number) {
      calls.push([...tokens]);
      const out = new Float32Array(tokens.length * vocab);
      for (let j = 0; j < tokens.length; j++) for (let v = 0; v < vocab; v++) out[j * vocab + v] = logit(pos + j, v);
      return out;
    },
  };
}

describe('perplexity()', () => {
  const tokens = Array.from({ length: 100 }, (_, i) => (i * 7) % 10);

  it('is the vocabulary size for uniform logits, scoring the second half of each chunk', async () => {
    const m = fake(10, () => 0);
    const r = await perplexity(m, tokens, 10, { ctx: 16, bosId: 1 });
    expect(r.ppl).toBeCloseTo(10, 5); // log-softmax runs in f32
    expect(r.chunks).toBe(6); // floor(100 / 16)
    expect(r.scoredTokens).toBe(6 * (16 - 8 - 1));
    expect(r.pplError).toBeCloseTo(0, 10);
    expect(m.calls.every((c) => c.length === 16 && c[0] === 1)).toBe(true); // each chunk starts with BOS
  });

  it('is 1 for a model that is certain and right, and KLD is 0 against itself', async () => {
    const sure = (pos: number, v: number) => (v === tokens[pos + 1] ? 50 : -50);
    const dir = await mkdtemp(join(tmpdir(), 'qllm-ppl-'));
    const base = join(dir, 'base.kld');
    // Positions are chunk-local in forward(); build per-chunk logits from the global token stream.
    const m = fake(10, () => 0);
    m.forward = async (toks, pos) => {
      const c = m.calls.length;
      m.calls.push([...toks]);
      const out = new Float32Array(toks.length * 10);
      for (let j = 0; j < toks.length; j++) for (let v = 0; v < 10; v++) out[j * 10 + v] = sure(c * 16 + pos + j, v);
      return out;
    };
    const r = await perplexity(m, tokens, 10, { ctx: 16, saveBase: base });
    expect(r.ppl).toBeCloseTo(1, 6);
    m.calls.length = 0;
    const r2 = await perplexity(m, tokens, 10, { ctx: 16, compareBase: base });
    expect(r2.kld!.mean).toBeCloseTo(0, 8);
    expect(r2.kld!.top1Agreement).toBe(1);
    // A uniform model against the confident base: KLD ≈ log(10), no top-1 guarantee.
    const u = await perplexity(fake(10, () => 0), tokens, 10, { ctx: 16, compareBase: base });
    expect(u.kld!.mean).toBeCloseTo(Math.log(10), 4);
  });

  it('rejects texts shorter than one chunk and mismatched bases', async () => {
    await expect(perplexity(fake(10, () => 0), tokens.slice(0, 10), 10, { ctx: 16 })).rejects.toThrow(/fewer than one chunk/);
    await expect(perplexity(fake(10, () => 0), tokens, 10, { ctx: 128 })).rejects.toThrow(/exceeds the loaded context/);
  });
});

describe.skipIf(!hasShared)('qllm perplexity on stories260K (../shared)', () => {
  it('q8_0 is within 1% of f32, q4_0 is worse, and KLD orders them the same way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qllm-ppl-'));
    const base = join(dir, 'f32.kld');
    const text = sharedRef('stories260K-sampled.txt');
    const run = async (m: string, extra: string[]) => {
      const r = await qllm(['perplexity', sharedModel(m), '-f', text, '-c', '128', '--chunks', '12', '--json', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const f32 = await run('stories260K.gguf', ['--kl-divergence-base', base]);
    const q8 = await run('stories260K-q8_0.gguf', ['--kl-divergence', base]);
    const q4 = await run('stories260K-q4_0.gguf', ['--kl-divergence', base]);
    expect(f32.chunks).toBe(12);
    expect(f32.ppl).toBeGreaterThan(1.5);
    expect(f32.ppl).toBeLessThan(6); // the text was sampled from this model
    expect(Math.abs(q8.ppl / f32.ppl - 1)).toBeLessThan(0.01);
    expect(q4.ppl).toBeGreaterThan(q8.ppl);
    expect(q8.kld_mean).toBeLessThan(q4.kld_mean);
    expect(q8.top1_agreement).toBeGreaterThan(0.95);
  });
});
