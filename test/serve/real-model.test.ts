// `qllm serve` over the real stories260K model (../shared) with the official
// openai and ollama clients: streaming chat works, and temperature 0 gives the
// same text as `qllm run --temp 0` for the same prompt, and as model.chat() for
// the same messages (same template). Logprobs against llama.cpp's logits; the
// llama-server routes on a real vocabulary.
import { readFileSync } from 'node:fs';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { qllm } from '../cli/helpers.ts';
import { hasShared, sharedModel, sharedRef } from '../shared.ts';

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
};

describe.skipIf(!hasShared)('qllm serve on stories260K with the openai client', () => {
  let model: QllmModel;
  let srv: QllmServer;
  let client: OpenAI;
  let url: string;
  beforeAll(async () => {
    model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 512 });
    srv = createServer(model, { port: 0, log: () => {}, modelPath: sharedModel('stories260K.gguf') });
    ({ url } = await srv.listen());
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await srv?.close();
    model?.dispose();
  });

  it('streams a chat reply whose text equals model.chat at temperature 0', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story about a cat.' }];
    const stream = await client.chat.completions.create({ model: model.info.name, messages, stream: true, temperature: 0, max_tokens: 24 });
    let text = '';
    let chunks = 0;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      chunks++;
    }
    expect(chunks).toBeGreaterThan(3);
    let direct = '';
    for await (const t of model.chat(messages, { temperature: 0, maxTokens: 24 })) direct += t.text;
    expect(text).toBe(direct);
    expect(text.length).toBeGreaterThan(10);
  });

  it('completes "Once upon a time" at temperature 0 exactly as qllm run --temp 0', async () => {
    const r = await client.completions.create({ model: model.info.name, prompt: 'Once upon a time', temperature: 0, max_tokens: 32 });
    const cli = JSON.parse((await qllm(['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '32', '--temp', '0', '--json', '--no-stats'])).stdout);
    expect(r.choices[0].text).toBe(cli.text);
    expect(r.usage?.completion_tokens).toBe(32);
  });

  it('lists the file name and general.name, and answers to any name', async () => {
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids[0]).toBe('stories260K');
    expect(ids).toContain(model.info.name);
    const r = await client.completions.create({ model: 'whatever-you-like', prompt: 'Once', temperature: 0, max_tokens: 2 });
    expect(r.model).toBe('stories260K');
  });

  it('completions logprobs at temperature 0 match llama.cpp\'s logits: chosen first, the same alternatives, the same gaps', async () => {
    const ref = JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8')) as { steps: { piece: string; top10: [number, string, number][] }[] };
    const steps = 8;
    const r = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', temperature: 0, max_tokens: steps, logprobs: 10 });
    const lp = r.choices[0].logprobs!;
    expect(lp.tokens).toEqual(ref.steps.slice(0, steps).map((s) => s.piece));
    expect(lp.tokens!.join('')).toBe(r.choices[0].text);
    for (let i = 0; i < steps; i++) {
      const top = lp.top_logprobs![i];
      const want = ref.steps[i].top10;
      expect(Object.keys(top)).toEqual(want.map((w) => w[1]));
      expect(lp.token_logprobs![i]).toBe(top[want[0][1]]);
      // log-softmax keeps logit differences: lp(k) - lp(0) = logit(k) - logit(0).
      for (const [, piece, logit] of want) expect(Math.abs(top[piece] - top[want[0][1]] - (logit - want[0][2]))).toBeLessThan(0.02);
      const mass = Object.values(top).reduce((a, v) => a + Math.exp(v), 0);
      expect(mass).toBeLessThanOrEqual(1 + 1e-6);
      expect(mass).toBeGreaterThan(0.5);
    }
    // Asking for logprobs does not change the text (the logits are read back instead of picked on the GPU).
    const plain = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', temperature: 0, max_tokens: steps });
    expect(plain.choices[0].text).toBe(r.choices[0].text);
  });

  it('chat logprobs at temperature 0: each token is its own top alternative, streamed or not', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const r = await client.chat.completions.create({ model: 'stories260K', messages, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 3 });
    const content = r.choices[0].logprobs!.content!;
    expect(content.length).toBe(r.usage!.completion_tokens - (r.choices[0].finish_reason === 'stop' ? 1 : 0));
    for (const c of content) {
      expect(c.top_logprobs).toHaveLength(3);
      expect(c.top_logprobs[0]).toEqual({ token: c.token, logprob: c.logprob, bytes: c.bytes });
      expect(c.logprob).toBeLessThanOrEqual(0);
      expect(Buffer.from(c.bytes!).toString('utf8')).toBe(c.token);
    }
    const stream = await client.chat.completions.create({ model: 'stories260K', messages, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 3, stream: true });
    const streamed = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    // The same tokens; the values agree closely (this run reuses the cached prompt, computed in other batches).
    expect(streamed.map((c) => c.top_logprobs.map((t) => t.token))).toEqual(content.map((c) => c.top_logprobs.map((t) => t.token)));
    for (const [i, c] of streamed.entries()) expect(Math.abs(c.logprob - content[i].logprob)).toBeLessThan(0.01);
  });

  it('/apply-template is exactly what a chat request feeds the model', async () => {
    const messages = [{ role: 'system' as const, content: 'You tell stories.' }, { role: 'user' as const, content: 'A story about a dog, please.' }];
    const { body } = await post(`${url}/apply-template`, { messages });
    const tokenized = await post(`${url}/tokenize`, { content: body.prompt, add_special: model.config.tokenizer!.addBos, parse_special: true });
    const gen = model.chat(messages, { temperature: 0, maxTokens: 1 });
    for await (const _ of gen) { /* run it to the end */ }
    expect(tokenized.body.tokens).toEqual(await gen.promptIds);
    const r = await client.chat.completions.create({ model: 'x', messages, temperature: 0, max_tokens: 1 });
    expect(r.usage!.prompt_tokens).toBe(tokenized.body.tokens.length);
    const props = (await (await fetch(`${url}/props`)).json());
    expect(props).toMatchObject({ model_path: sharedModel('stories260K.gguf'), bos_token: '<s>', eos_token: '</s>', default_generation_settings: { n_ctx: 512 } });
    expect(props.chat_template).toMatch(/{%/);
  });

  it('/tokenize → /detokenize round-trips; pieces that are not UTF-8 come as bytes', async () => {
    const text = 'Once upon a time, 媽 said "hi" to 🤗 and   three spaces.';
    const t = await post(`${url}/tokenize`, { content: text });
    expect(t.body.tokens).toEqual(model.tokenize(text, { addBos: false }));
    expect((await post(`${url}/detokenize`, { tokens: t.body.tokens })).body.content).toBe(text);
    // llama-server's documented example on this very model (after the SentencePiece space prefix, as llama.cpp adds it).
    const a = (await post(`${url}/tokenize`, { content: 'á', with_pieces: true })).body.tokens;
    expect(a.slice(-2)).toEqual([{ id: 198, piece: [195] }, { id: 164, piece: [161] }]);
    expect(a.map((t: { id: number }) => t.id)).toEqual(model.tokenize('á', { addBos: false }));
    const bos = await post(`${url}/tokenize`, { content: 'Once', add_special: true, with_pieces: true });
    expect(bos.body.tokens[0]).toEqual({ id: 1, piece: '<s>' });
  });

  it('never puts control tokens in reply text', async () => {
    const texts: string[] = [];
    for (const seed of [1, 2, 3]) {
      const r = await client.completions.create({ model: 'x', prompt: 'Once upon a time', temperature: 1, seed, max_tokens: 120 });
      texts.push(r.choices[0].text);
    }
    const g = await new Ollama({ host: url }).generate({ model: 'x', prompt: 'The end.', stream: false, options: { temperature: 1, seed: 5, num_predict: 120 } });
    texts.push(g.response ?? '');
    for (const t of texts) for (const control of ['<s>', '</s>', '<unk>']) expect(t).not.toContain(control);
  });

  it('ollama generate continues a plain prompt on a model without a chat template, as /v1/completions does', async () => {
    const ollama = new Ollama({ host: url });
    const g = await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', stream: false, options: { temperature: 0, num_predict: 16 } });
    const c = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', temperature: 0, max_tokens: 16 });
    expect(g.response).toBe(c.choices[0].text);
    expect(g.eval_count).toBe(16);
    let streamed = '';
    for await (const p of await ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'Tell me a story about a cat.' }], stream: true, options: { temperature: 0, num_predict: 24 } })) streamed += p.message.content;
    let direct = '';
    for await (const t of model.chat([{ role: 'user', content: 'Tell me a story about a cat.' }], { temperature: 0, maxTokens: 24 })) direct += t.text;
    expect(streamed).toBe(direct);
  });

  it('refuses a 900 KB prompt from its byte count, without tokenizing it', async () => {
    const encode = vi.spyOn(model.tokenizer, 'encode');
    try {
      const r = await post(`${url}/v1/completions`, { prompt: 'Once upon a time '.repeat(53_000), max_tokens: 4 });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('context_length_exceeded');
      expect(r.body.error.message).toMatch(/bytes/);
      expect(encode).not.toHaveBeenCalled();
    } finally {
      encode.mockRestore();
    }
  });
});
