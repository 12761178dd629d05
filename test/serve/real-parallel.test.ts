// `qllm serve --parallel 3` over the real stories260K (../shared): concurrent
// streaming completions at temperature 0 each give the text they give alone,
// their decode steps were batched, a client that leaves mid-stream frees its
// slot for a waiting request, and a prompt repeated with more text reuses the
// slot's cache (usage.prompt_tokens_details.cached_tokens).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { readSse } from './helpers.ts';

const gpu = hasShared && !!(await getTestEngine());
const PROMPTS = ['Once upon a time there was a', 'The little dog ran to the', 'Lily saw a big red', 'Tom and Sue went to the park and', 'One day, a bird'];

describe.skipIf(!gpu)('qllm serve --parallel 3 on stories260K', () => {
  let model: QllmModel;
  let srv: QllmServer;
  let url: string;
  beforeAll(async () => {
    model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 256, parallel: 3 });
    srv = createServer(model, { port: 0, log: () => {}, parallel: 3 });
    ({ url } = await srv.listen());
  });
  afterAll(async () => {
    await srv?.close();
    model?.dispose();
  });

  const stream = async (prompt: string, maxTokens: number, signal?: AbortSignal) => {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, signal,
      body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
    });
    return res;
  };
  const textOf = async (res: Response) => {
    expect(res.status).toBe(200);
    const data = await readSse(res);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    return chunks.map((c) => c.choices[0]?.text ?? '').join('');
  };

  it('five concurrent streams in three slots: each gets its solo text, and steps were shared', async () => {
    const solo: string[] = [];
    for (const p of PROMPTS) {
      let t = '';
      for await (const x of model.generate(p, { temperature: 0, maxTokens: 30 })) t += x.text;
      solo.push(t);
    }
    expect(new Set(solo).size).toBe(PROMPTS.length);
    const before = model.scheduler.batchedSteps;
    const got = await Promise.all(PROMPTS.map(async (p) => textOf(await stream(p, 30))));
    expect(got).toEqual(solo);
    expect(model.scheduler.batchedSteps - before).toBeGreaterThan(20);
  });

  it('a client that leaves mid-stream frees its slot for a waiting request', async () => {
    const acs = PROMPTS.slice(0, 3).map(() => new AbortController());
    const long = await Promise.all(PROMPTS.slice(0, 3).map((p, i) => stream(p, 230, acs[i].signal)));
    const waiting = stream(PROMPTS[4], 10);
    const stats = async () => (await (await fetch(`${url}/v1/qllm/stats`)).json()).queue;
    while ((await stats()).waiting !== 1) await new Promise((r) => setTimeout(r, 5));
    acs[1].abort();
    await long[1].body?.cancel().catch(() => {});
    const text = await textOf(await waiting);
    expect(text.length).toBeGreaterThan(0);
    // The other two long streams were still running when the waiting one finished.
    expect(await stats()).toMatchObject({ busy: 2, waiting: 0 });
    for (const ac of acs) ac.abort();
  });

  it('a prompt that extends a finished one reuses its slot\'s cache', async () => {
    const base = 'Once upon a time, in a small house near the woods, there lived a little girl named Lily who loved';
    const post = async (prompt: string) => (await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 4, temperature: 0 }) })).json();
    await post(base);
    const r = await post(`${base} to play with her dog`);
    const baseIds = model.tokenize(base);
    expect(r.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(baseIds.length - 1);
    expect(r.timings.prompt_tokens_cached).toBe(r.usage.prompt_tokens_details.cached_tokens);
  });
});
