// Embeddings (model.embed): pooling as the file says, unit length, and the
// same direction as llama.cpp's own embeddings (node-llama-cpp's
// createEmbeddingContext) on stories260K (no pooling type: the last token) and
// on tiny qwen3 models with mean, cls and last pooling: cosine ≥ 0.999.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pool, poolingFor } from '../src/embed.ts';
import { kv } from '../src/gguf/writer.ts';
import { loadModel } from '../src/model-api.ts';
import { makeModel } from '../src/synth/make-model.ts';
import { rewriteMeta } from './gguf/remeta.ts';
import { disposeOracle, oracleEmbed, skipWithoutOracle } from './oracle/llama-cpp.ts';
import { hasShared, sharedModel } from './shared.ts';

const cosine = (a: number[], b: number[]) => {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
};

describe('pool', () => {
  // 3 tokens × dim 2.
  const h = new Float32Array([1, 2, 3, 4, 5, 9]);
  it('means, takes the first or the last row, and normalises', () => {
    expect(pool(h, 3, 2, 'mean', false)).toEqual([3, 5]);
    expect(pool(h, 3, 2, 'cls', false)).toEqual([1, 2]);
    expect(pool(h, 3, 2, 'last', false)).toEqual([5, 9]);
    const n = pool(h, 3, 2, 'mean', true);
    expect(Math.hypot(...n)).toBeCloseTo(1, 12);
    expect(n[1] / n[0]).toBeCloseTo(5 / 3, 12);
  });
  it("takes the file's pooling, 'last' for none, and refuses rerankers", () => {
    expect(poolingFor('none')).toBe('last');
    expect(poolingFor('mean')).toBe('mean');
    expect(poolingFor('mean', 'cls')).toBe('cls');
    expect(() => poolingFor('rank')).toThrow(/reranker/);
  });
});

describe.skipIf(!hasShared)('model.embed against llama.cpp', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-embed-'));
  const texts = ['Once upon a time there was a cat.', 'The dog ran to the park', 'a'];
  const models: Record<string, string> = {};
  beforeAll(async () => {
    models.stories = sharedModel('stories260K.gguf');
    const base = join(dir, 'qwen3.gguf');
    await makeModel({ out: base, arch: 'qwen3', type: 'q8_0', seed: 21, vocabFile: sharedModel('stories260K.gguf') });
    for (const [name, code] of [['mean', 1], ['cls', 2], ['last', 3]] as const) {
      models[name] = await rewriteMeta(base, join(dir, `qwen3-${name}.gguf`), { 'qwen3.pooling_type': kv.u32('qwen3.pooling_type', code) });
    }
  }, 120_000);
  afterAll(async () => {
    await disposeOracle();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['stories', 'mean', 'cls', 'last'])('%s: unit vectors in llama.cpp\'s direction (cosine ≥ 0.999)', async (which) => {
    if (await skipWithoutOracle('embeddings')) return;
    const model = await loadModel(models[which], { contextLength: 128 });
    try {
      const ours = await model.embed(texts);
      expect(ours).toHaveLength(texts.length);
      for (let i = 0; i < texts.length; i++) {
        const e = ours[i];
        expect(e.embedding).toHaveLength(model.config.dim);
        expect(Math.hypot(...e.embedding)).toBeCloseTo(1, 5);
        const ids = model.tokenize(texts[i]);
        expect(e.tokens).toBe(ids.length);
        const theirs = await oracleEmbed(models[which], ids, { contextSize: 128 });
        const c = cosine(e.embedding, theirs);
        expect(c, `${which} text ${i}: cosine ${c}`).toBeGreaterThanOrEqual(0.999);
        console.log(`${which} text ${i}: cosine ${c.toFixed(6)}`);
      }
      // Different texts differ (cls pools the BOS alone, the same for every text).
      if (which !== 'cls') expect(cosine(ours[0].embedding, ours[1].embedding)).toBeLessThan(0.9999);
      else expect(cosine(ours[0].embedding, ours[1].embedding)).toBeCloseTo(1, 6);
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('refuses what it cannot embed in one line, and a generation after it starts from an empty cache', async () => {
    const model = await loadModel(models.stories, { contextLength: 32 });
    try {
      await expect(model.embed('word '.repeat(100))).rejects.toThrow(/^text 0 is \d+ tokens, more than the context of 32/);
      await expect(model.embed([1 as unknown as string])).rejects.toThrow(/a string or an array of strings/);
      const first: number[] = [];
      for await (const t of model.generate('Once upon a time', { temperature: 0, maxTokens: 8 })) first.push(t.tokenId);
      await model.embed(['something else entirely']);
      const again: number[] = [];
      const g = model.generate('Once upon a time', { temperature: 0, maxTokens: 8 });
      for await (const t of g) again.push(t.tokenId);
      expect(again).toEqual(first);
      expect((await g.stats).cachedTokens).toBe(0); // the cache was forgotten, not reused stale
    } finally {
      model.dispose();
    }
  });
});
