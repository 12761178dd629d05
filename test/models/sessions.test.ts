// Several conversations on one model (LoadOptions.parallel) on the real
// stories260K: sessions generating at the same time are batched into shared
// decode steps (the scheduler counts them), and each gets exactly what it gets
// alone — greedy ids, seeded samples, logprobs — with f16/f32 and q8_0 KV
// caches. Also: sessions run out and come back, the prompt cache per session,
// and one generation with parallel > 1 equals one with parallel 1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateOptions, Generation, ModelSession } from '../../src/api.ts';
import { UsageError } from '../../src/errors.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { hasShared, sharedModel } from '../shared.ts';

const gpu = hasShared && !!(await getTestEngine());
const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park. They', 'One day'];

async function collect(g: Generation): Promise<{ ids: number[]; text: string; lps: number[] }> {
  const ids: number[] = [], lps: number[] = [];
  let text = '';
  for await (const t of g) {
    if (t.tokenId >= 0) ids.push(t.tokenId);
    if (t.logprob !== undefined) lps.push(t.logprob);
    text += t.text;
  }
  return { ids, text, lps };
}

for (const kvType of [undefined, 'q8_0'] as const) {
  describe.skipIf(!gpu)(`sessions on stories260K (kv ${kvType ?? 'default'})`, () => {
    let model: QllmModel;
    let single: QllmModel;
    beforeAll(async () => {
      model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 96, parallel: 4, kvType });
      single = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 96, kvType });
    });
    afterAll(() => {
      model?.dispose();
      single?.dispose();
    });

    const cases: [string, GenerateOptions][] = [
      ['greedy', { temperature: 0, maxTokens: 40 }],
      ['seeded samples with logprobs', { temperature: 0.9, topK: 40, seed: 7, maxTokens: 30, logprobs: 2 }],
    ];
    it.each(cases)('4 concurrent sessions each give what they give alone (%s)', async (_, opts) => {
      // Alone: one at a time on the model loaded with parallel 1.
      const alone = [];
      for (const p of PROMPTS) alone.push(await collect(single.generate(p, opts)));
      expect(new Set(alone.map((a) => a.ids.join())).size, 'the prompts give different replies').toBe(PROMPTS.length);
      // Together: the model's own session and three more, started at once, prompts in another order.
      const sessions: ModelSession[] = [model.mainSession, model.createSession(), model.createSession(), model.createSession()];
      const order = [2, 0, 3, 1];
      const before = model.scheduler.batchedSteps;
      const together = await Promise.all(order.map((pi, si) => collect(sessions[si].generate(PROMPTS[pi], opts))));
      for (const [si, pi] of order.entries()) {
        expect(together[si].ids, `prompt ${pi} on session ${si}`).toEqual(alone[pi].ids);
        expect(together[si].text).toBe(alone[pi].text);
        if (opts.logprobs !== undefined) {
          expect(together[si].lps.length).toBe(alone[pi].ids.length);
          // Batched products round differently from one token's (the ids above are the same).
          for (const [i, lp] of together[si].lps.entries()) expect(Math.abs(lp - alone[pi].lps[i])).toBeLessThan(2e-3);
        }
      }
      // They did share steps: at least most of the shortest reply's tokens went in batches.
      const shortest = Math.min(...together.map((t) => t.ids.length));
      expect(model.scheduler.batchedSteps - before).toBeGreaterThanOrEqual(shortest / 2);
      for (const s of sessions.slice(1)) s.dispose();
    });

    it('sessions with different options at once: greedy, seeded, logprobs, a JSON schema', async () => {
      const mixed: GenerateOptions[] = [
        { temperature: 0, maxTokens: 30 },
        { temperature: 1, seed: 3, maxTokens: 30 },
        { temperature: 0, maxTokens: 20, logprobs: 1 },
        { temperature: 0.7, seed: 11, maxTokens: 40, jsonSchema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] } },
      ];
      const alone = [];
      for (const [i, o] of mixed.entries()) alone.push(await collect(single.generate(PROMPTS[i], o)));
      const sessions: ModelSession[] = [model.mainSession, model.createSession(), model.createSession(), model.createSession()];
      const together = await Promise.all(mixed.map((o, i) => collect(sessions[i].generate(PROMPTS[i], o))));
      for (const [i, t] of together.entries()) expect(t.ids, `options ${i}`).toEqual(alone[i].ids);
      expect(() => JSON.parse(together[3].text)).not.toThrow();
      for (const s of sessions.slice(1)) s.dispose();
    });

    it('one generation on a model with parallel 4 equals one on a model with parallel 1, bit for bit in its logprobs', async () => {
      const opts = { temperature: 0, maxTokens: 24, logprobs: 3 };
      for (const m of [model, single]) m.mainSession.reset(); // both prefill the whole prompt
      const a = await collect(single.generate(PROMPTS[2], opts));
      const b = await collect(model.generate(PROMPTS[2], opts));
      expect(b.ids).toEqual(a.ids);
      expect(b.lps).toEqual(a.lps);
    });

    it('sessions run out at parallel − 1 and come back on dispose(); a disposed session refuses to generate', async () => {
      const s = [model.createSession(), model.createSession(), model.createSession()];
      expect(() => model.createSession()).toThrow(UsageError);
      expect(() => model.createSession()).toThrow(/^all 4 sequences of this model are in use \(its own generate\(\)\/chat\(\) and 3 sessions\): dispose\(\) a session, or load with parallel 5$/);
      s[1].dispose();
      expect(() => s[1].generate('x')).toThrow(/session was disposed/);
      const again = model.createSession();
      for (const x of [s[0], s[2], again]) x.dispose();
      model.mainSession.dispose(); // the model's own: nothing happens
      expect(() => single.createSession()).toThrow(/^this model holds one conversation \(its own generate\(\)\/chat\(\)\): load it with parallel 2 or more/);
      expect((await collect(model.generate('Once', { temperature: 0, maxTokens: 3 }))).ids.length).toBe(3);
    });

    it('each session keeps its own prompt cache', async () => {
      const a = model.createSession(), b = model.createSession();
      const opts = { temperature: 0, maxTokens: 8 };
      await Promise.all([collect(a.generate(PROMPTS[0], opts)), collect(b.generate(PROMPTS[1], opts))]);
      const ids0 = model.tokenize(`${PROMPTS[0]} and then`);
      expect(a.cachedTokens(ids0)).toBe(model.tokenize(PROMPTS[0]).length);
      expect(b.cachedTokens(ids0)).toBe(1); // only the BOS
      const g = a.generate(`${PROMPTS[0]} and then`, opts);
      await collect(g);
      expect((await g.stats).cachedTokens).toBe(model.tokenize(PROMPTS[0]).length);
      a.dispose();
      b.dispose();
    });
  });
}
