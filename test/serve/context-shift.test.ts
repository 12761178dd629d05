// `qllm serve --context-shift`: generations go on past the context as
// llama-server's do, keeping n_keep (Ollama: num_keep; default a chat's system
// messages, else the BOS), max_tokens may exceed the context, a longer prompt is
// cut instead of refused, and the shifts are reported (OpenAI timings, /completion's
// truncated, /v1/qllm/stats). Without the flag a reply ends at the context as before.
// First the plumbing on the fake model (which keeps to the context as the library
// does), then the library's real shift on stories260K at -c 64.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChatMessage } from '../../src/api.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import type { ChatTemplate } from '../../src/serve/model-meta.ts';
import { templateOf } from '../../src/serve/model-meta.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { readSse, startFake } from './helpers.ts';

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? await r.json() : await r.text() };
};

/** A template the fake can be served with: one line per message, as the fake's own chat(). */
const lines: ChatTemplate = {
  source: '(test)', usedDefault: false, bosText: '<bos>', eosText: '<eos>',
  render: (messages, _max, _tools, generationPrompt = true) => ({ text: messages.map((m) => `<|${m.role}|> ${m.content}`).join('\n') + (generationPrompt ? '\n<|assistant|>' : ''), addBos: true }),
};

describe('context shift on the fake model (-c 32)', () => {
  const fakeOpts = { context: true, contextLength: 32, delayMs: 0 };

  it('off (the default): max_tokens past the context is a 400, a reply ends at the context, a long prompt is a 400', async () => {
    const s = await startFake({}, fakeOpts);
    try {
      const over = await post(`${s.url}/v1/completions`, { prompt: 'forever', max_tokens: 96 });
      expect(over.status).toBe(400);
      expect(over.body.error).toMatchObject({ code: 'context_length_exceeded', param: 'max_tokens' });
      const r = await post(`${s.url}/v1/completions`, { prompt: 'forever', n_keep: 1 });
      expect(r.body.choices[0].finish_reason).toBe('length');
      expect(r.body.usage.completion_tokens).toBe(30); // 32 - <bos> forever
      expect(r.body.timings).toMatchObject({ context_shifts: 0, prompt_tokens_dropped: 0 });
      expect(s.fake.lastOpts).toMatchObject({ contextShift: false });
      expect(s.fake.lastOpts).not.toHaveProperty('keepTokens');
      // chat() shifts by default; the server says it must not.
      await post(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] });
      expect(s.fake.lastOpts).toMatchObject({ contextShift: false });
      const long = await post(`${s.url}/v1/completions`, { prompt: 'word '.repeat(40), max_tokens: 4 });
      expect(long.status).toBe(400);
      expect(long.body.error.code).toBe('context_length_exceeded');
      // llama-server's /completion says the context ran out.
      const c = await post(`${s.url}/completion`, { prompt: 'forever' });
      expect(c.body).toMatchObject({ stop: true, truncated: true, stop_type: 'limit', tokens_predicted: 30, tokens_evaluated: 2 });
      expect((await post(`${s.url}/completion`, { prompt: 'hello there', n_predict: 8 })).body).toMatchObject({ content: 'You said: hello there', truncated: false, stop_type: 'eos' });
      expect(s.fake.shifts).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('on: 3× the context in tokens, ending at max_tokens; n_keep (after the BOS) is what every shift keeps', async () => {
    const s = await startFake({ contextShift: true }, fakeOpts);
    try {
      const r = await post(`${s.url}/v1/completions`, { prompt: 'forever', max_tokens: 96 });
      expect(r.status).toBe(200);
      expect(r.body.choices[0].finish_reason).toBe('length');
      expect(r.body.usage.completion_tokens).toBe(96);
      expect(r.body.timings.context_shifts).toBeGreaterThanOrEqual(3);
      expect(s.fake.lastOpts).toMatchObject({ contextShift: true, maxTokens: 96 });
      expect(s.fake.lastOpts).not.toHaveProperty('keepTokens'); // the library's default: the BOS
      expect(s.fake.shifts.every((x) => x.kept.length === 1 && x.kept[0] === 0)).toBe(true);
      const stats = await (await fetch(`${s.url}/v1/qllm/stats`)).json();
      expect(stats).toMatchObject({ context_shift: true, last: { context_shifts: r.body.timings.context_shifts, completion_tokens: 96 } });
      expect(stats.context_shifts).toBe(r.body.timings.context_shifts);

      const forever = s.fake.tokenize('forever');
      s.fake.shifts = [];
      const k = await post(`${s.url}/v1/completions`, { prompt: 'forever', max_tokens: 64, n_keep: 1 });
      expect(k.body.usage.completion_tokens).toBe(64);
      expect(s.fake.lastOpts?.keepTokens).toBe(2); // the BOS and n_keep 1
      expect(s.fake.shifts.length).toBeGreaterThan(0);
      for (const x of s.fake.shifts) expect(x.kept).toEqual(forever);
      await post(`${s.url}/v1/completions`, { prompt: 'forever', max_tokens: 4, n_keep: -1 });
      expect(s.fake.lastOpts?.keepTokens).toBe(-1); // the whole prompt
      await post(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'forever' }], max_tokens: 40, n_keep: 2 });
      expect(s.fake.lastOpts).toMatchObject({ contextShift: true, keepTokens: 3, maxTokens: 40 });
      const bad = await post(`${s.url}/v1/completions`, { prompt: 'forever', n_keep: -2 });
      expect(bad.status).toBe(400);
      expect(bad.body.error.param).toBe('n_keep');
    } finally {
      await s.close();
    }
  });

  it('on: Ollama num_keep and num_predict past the context; /completion n_keep, truncated, streamed', async () => {
    const s = await startFake({ contextShift: true }, fakeOpts);
    try {
      const g = await post(`${s.url}/api/generate`, { model: 'x', prompt: 'forever', raw: true, stream: false, options: { num_predict: 70, num_keep: 1 } });
      expect(g.body).toMatchObject({ done: true, done_reason: 'length', eval_count: 70 });
      expect(s.fake.lastOpts).toMatchObject({ contextShift: true, keepTokens: 2, maxTokens: 70 });
      const c = await post(`${s.url}/completion`, { prompt: 'forever', n_predict: 80, n_keep: 0, return_tokens: true });
      expect(c.body).toMatchObject({ stop: true, truncated: true, stop_type: 'limit', tokens_predicted: 80, tokens_evaluated: 2, generation_settings: { n_predict: 80, n_keep: 0 } });
      expect(c.body.tokens).toHaveLength(80);
      expect(c.body.content.startsWith('tick0 tick1')).toBe(true);
      expect(s.fake.lastOpts?.keepTokens).toBe(1);
      const res = await fetch(`${s.url}/completion`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'forever', n_predict: 40, stream: true }) });
      const events = (await readSse(res)).map((e) => JSON.parse(e));
      expect(events.at(-1)).toMatchObject({ content: '', stop: true, truncated: true, tokens_predicted: 40 });
      expect(events.slice(0, -1).every((e) => e.stop === false)).toBe(true);
      expect(events.slice(0, -1).map((e) => e.content).join('')).toMatch(/^tick0 tick1 .* tick39$/);
      const refused = await post(`${s.url}/completion`, { prompt: 'forever', n_probs: 3 });
      expect(refused.status).toBe(400);
      expect(refused.body.error.param).toBe('n_probs');
    } finally {
      await s.close();
    }
  });

  it('on: a prompt longer than the context is cut as the library cuts it, not refused', async () => {
    const s = await startFake({ contextShift: true }, fakeOpts);
    try {
      const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
      const r = await post(`${s.url}/v1/completions`, { prompt: words, max_tokens: 5 });
      expect(r.status).toBe(200);
      expect(r.body.timings.prompt_tokens_dropped).toBeGreaterThan(0);
      expect(r.body.usage.prompt_tokens).toBe(41 - r.body.timings.prompt_tokens_dropped);
      expect(r.body.usage.prompt_tokens).toBeLessThan(32);
      const c = await post(`${s.url}/completion`, { prompt: words, n_predict: 2 });
      expect(c.body).toMatchObject({ truncated: true, tokens_predicted: 2 });
      const stats = await (await fetch(`${s.url}/v1/qllm/stats`)).json();
      expect(stats.truncated_prompts).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('on: a chat the server renders keeps its leading system messages by default', async () => {
    const s = await startFake({ contextShift: true, meta: { template: lines } }, fakeOpts);
    try {
      const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'system', content: 'Be kind.' }, { role: 'user', content: 'forever' }];
      const r = await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 64 });
      expect(r.body.usage.completion_tokens).toBe(64);
      // <bos> <|system|> Be brief. <|system|> Be kind.
      expect(s.fake.lastOpts?.keepTokens).toBe(7);
      expect(s.fake.shifts.length).toBeGreaterThan(0);
      for (const x of s.fake.shifts) expect(x.kept).toEqual(s.fake.tokenize('<|system|> Be brief.\n<|system|> Be kind.'));
      // Ollama's chat the same; n_keep / num_keep wins; no system message: the BOS.
      await post(`${s.url}/api/chat`, { model: 'x', messages, stream: false, options: { num_predict: 4 } });
      expect(s.fake.lastOpts?.keepTokens).toBe(7);
      await post(`${s.url}/api/chat`, { model: 'x', messages, stream: false, options: { num_predict: 4, num_keep: 2 } });
      expect(s.fake.lastOpts?.keepTokens).toBe(3);
      await post(`${s.url}/v1/chat/completions`, { messages: messages.slice(2), max_tokens: 4 });
      expect(s.fake.lastOpts).not.toHaveProperty('keepTokens');
    } finally {
      await s.close();
    }
  });
});

describe.skipIf(!hasShared)('context shift on stories260K (-c 64)', () => {
  let model: QllmModel;
  let plain: QllmServer;
  let shifting: QllmServer;
  let urls: { plain: string; shifting: string };
  const prompt = 'Once upon a time';
  beforeAll(async () => {
    model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 64 });
    plain = createServer(model, { port: 0, log: () => {} });
    shifting = createServer(model, { port: 0, log: () => {}, contextShift: true });
    urls = { plain: (await plain.listen()).url, shifting: (await shifting.listen()).url };
  });
  afterAll(async () => {
    await plain?.close();
    await shifting?.close();
    model?.dispose();
  });

  /** The model's forward steps (greedy decoding takes forwardArgmax) during `fn`. */
  async function steps<T>(fn: () => Promise<T>): Promise<{ result: T; calls: { n: number; pos: number }[] }> {
    const spy = vi.spyOn(model.llama, 'forwardArgmax');
    try {
      const result = await fn();
      return { result, calls: spy.mock.calls.map(([tokens, pos]) => ({ n: tokens.length, pos })) };
    } finally {
      spy.mockRestore();
    }
  }

  it('without --context-shift the reply ends at the context (length), as before', async () => {
    const r = await post(`${urls.plain}/v1/completions`, { prompt, temperature: 0 });
    expect(r.body.choices[0].finish_reason).toBe('length');
    expect(r.body.usage.prompt_tokens + r.body.usage.completion_tokens).toBe(64);
    expect((await post(`${urls.plain}/v1/completions`, { prompt, max_tokens: 192 })).status).toBe(400);
  });

  it('with it, 3× the context in tokens, as the library generates them, keeping n_keep after the BOS', async () => {
    const { result: r, calls } = await steps(() => post(`${urls.shifting}/v1/completions`, { prompt, temperature: 0, max_tokens: 192, n_keep: 3 }));
    expect(r.status).toBe(200);
    expect(r.body.choices[0].finish_reason).toBe('length');
    expect(r.body.usage.completion_tokens).toBe(192);
    expect(r.body.timings.context_shifts).toBeGreaterThanOrEqual(3);
    // The model saw the prompt (the part not cached by the last test), then never wrote below the
    // kept 4 (BOS + 3); each shift refed its kept tail from there.
    expect(calls[0].pos + calls[0].n).toBe(5);
    expect(calls.slice(1).every((c) => c.pos >= 4)).toBe(true);
    expect(calls.filter((c) => c.pos === 4 && c.n > 1).length).toBe(r.body.timings.context_shifts);
    let direct = '';
    for await (const t of model.generate(prompt, { temperature: 0, maxTokens: 192, contextShift: true, keepTokens: 4 })) direct += t.text;
    expect(r.body.choices[0].text).toBe(direct);
    const c = await post(`${urls.shifting}/completion`, { prompt, temperature: 0, n_predict: 100, n_keep: -1 });
    expect(c.body).toMatchObject({ content: expect.any(String), truncated: true, stop_type: 'limit', tokens_predicted: 100 });
  });

  it('a chat keeps its system prompt, as model.chat() does', async () => {
    const messages: ChatMessage[] = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'A story about a dog.' }];
    const t = templateOf(model.config.tokenizer!);
    const head = model.tokenize(t.render(messages.slice(0, 1), undefined, undefined, false).text, { addBos: t.render(messages).addBos });
    const { result: r, calls } = await steps(() => post(`${urls.shifting}/v1/chat/completions`, { messages, temperature: 0, max_tokens: 120 }));
    expect(r.body.choices[0].finish_reason).toBe('length');
    expect(r.body.timings.context_shifts).toBeGreaterThan(0);
    // Each shift refed the kept tail right after the system turn.
    expect(head.length).toBeGreaterThan(3);
    const refeeds = calls.slice(1).filter((c) => c.n > 1);
    expect(refeeds).toHaveLength(r.body.timings.context_shifts);
    for (const c of refeeds) expect(c.pos).toBe(head.length);
    let direct = '';
    for await (const x of model.chat(messages, { temperature: 0, maxTokens: 120 })) direct += x.text;
    expect(r.body.choices[0].message.content).toBe(direct);
  });

  it('a prompt longer than the context is cut with the flag, refused without', async () => {
    const long = 'Once upon a time there was a little dog. '.repeat(12);
    const r = await post(`${urls.shifting}/v1/completions`, { prompt: long, temperature: 0, max_tokens: 8 });
    expect(r.status).toBe(200);
    expect(r.body.timings.prompt_tokens_dropped).toBeGreaterThan(0);
    expect(r.body.usage.prompt_tokens).toBeLessThan(64);
    const no = await post(`${urls.plain}/v1/completions`, { prompt: long, temperature: 0, max_tokens: 8 });
    expect(no.status).toBe(400);
    expect(no.body.error.code).toBe('context_length_exceeded');
  });
});
