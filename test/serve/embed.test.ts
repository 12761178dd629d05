// Embeddings through the server: OpenAI's /v1/embeddings (floats and base64),
// Ollama's /api/embed and /api/embeddings, with the official clients; one-line
// 400s for what cannot be embedded; and on the real stories260K, the vectors
// are model.embed()'s and an embedding waits for a running generation instead
// of cutting it off.
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { startFake } from './helpers.ts';

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('embedding routes over the fake model', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => {
    s = await startFake();
  });
  afterAll(() => s.close());

  it('OpenAI: the openai client gets one vector per input, in order, with usage; base64 decodes to the same floats', async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const want = await s.fake.embed(['hello world', 'please talk']);
    const r = await client.embeddings.create({ model: 'any-name', input: ['hello world', 'please talk'], encoding_format: 'float' });
    expect(r.data.map((d) => d.index)).toEqual([0, 1]);
    expect(r.data.map((d) => d.embedding)).toEqual(want.map((e) => e.embedding));
    expect(r.usage.prompt_tokens).toBe(want[0].tokens + want[1].tokens);
    const b = await post(`${s.url}/v1/embeddings`, { input: 'hello world', encoding_format: 'base64' });
    expect(b.status).toBe(200);
    const raw = Buffer.from((b.body.data as { embedding: string }[])[0].embedding, 'base64');
    expect(Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4))).toEqual(want[0].embedding.map((x) => Math.fround(x)));
    // The client's default (base64) decodes to the same vector too.
    const d = await client.embeddings.create({ model: 'x', input: 'hello world' });
    expect(d.data[0].embedding.map((x) => Math.fround(x))).toEqual(want[0].embedding.map((x) => Math.fround(x)));
  });

  it('Ollama: the ollama client embeds; the older /api/embeddings answers too', async () => {
    const ollama = new Ollama({ host: s.url });
    const want = await s.fake.embed(['hello world', 'please talk']);
    const r = await ollama.embed({ model: 'whatever', input: ['hello world', 'please talk'] });
    expect(r.embeddings).toEqual(want.map((e) => e.embedding));
    expect(r.prompt_eval_count).toBe(want[0].tokens + want[1].tokens);
    const old = await ollama.embeddings({ model: 'whatever', prompt: 'hello world' });
    expect(old.embedding).toEqual(want[0].embedding);
  });

  it.each([
    [{ input: [] }, /'input' must be a string or a non-empty array of strings/],
    [{ input: [1, 2, 3] }, /'input\[0\]' is a token id or token array: qllm embeds text/],
    [{ input: ['a', { b: 1 }] }, /'input\[1\]' must be a string/],
    [{ input: Array(300).fill('a') }, /'input' has 300 texts: at most 256/],
    [{ input: 'a', encoding_format: 'int8' }, /'encoding_format' must be "float" or "base64"/],
    [{ input: 'a', dimensions: 3 }, /'dimensions' 3 is not supported: this model's embeddings have 4 dimensions/],
  ])('OpenAI refuses %j in one line', async (body, msg) => {
    const r = await post(`${s.url}/v1/embeddings`, body);
    expect(r.status).toBe(400);
    const m = (r.body.error as { message: string }).message;
    expect(m).toMatch(msg);
    expect(m).not.toContain('\n');
  });

  it('Ollama refuses a missing prompt in its own error shape', async () => {
    const r = await post(`${s.url}/api/embeddings`, { model: 'x' });
    expect(r.status).toBe(400);
    expect(typeof r.body.error).toBe('string');
  });
});

describe.skipIf(!hasShared)('embeddings on stories260K through the server', () => {
  let model: QllmModel;
  let srv: QllmServer;
  let url = '';
  beforeAll(async () => {
    model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 256 });
    srv = createServer(model, { port: 0, log: () => {}, modelPath: sharedModel('stories260K.gguf') });
    ({ url } = await srv.listen());
  });
  afterAll(async () => {
    await srv?.close();
    model?.dispose();
  });

  it("returns model.embed()'s vectors, and waits for a running generation rather than cutting it off", async () => {
    const stream = fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 120, temperature: 0 }),
    }).then((r) => r.json() as Promise<{ choices: { finish_reason: string; text: string }[] }>);
    await new Promise((r) => setTimeout(r, 20));
    const e = await post(`${url}/v1/embeddings`, { input: ['Once upon a time', 'The cat sat'] });
    const done = await stream;
    expect(done.choices[0].finish_reason).toMatch(/^(length|stop)$/);
    expect(done.choices[0].text.length).toBeGreaterThan(20);
    expect(e.status).toBe(200);
    const ours = await model.embed(['Once upon a time', 'The cat sat']);
    const got = (e.body.data as { embedding: number[] }[]).map((d) => d.embedding);
    for (let i = 0; i < 2; i++) for (let j = 0; j < ours[i].embedding.length; j++) expect(got[i][j]).toBeCloseTo(ours[i].embedding[j], 5);
  });
});
