// llama-server's routes (/tokenize, /detokenize, /apply-template, /props,
// /metrics) over the fake model, the prompt's byte bound and the chat
// template's work budget. The same routes on a real model: real-model.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { templateOf } from '../../src/serve/model-meta.ts';
import { startFake } from './helpers.ts';

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

/** A vocabulary-less config carrying only what a chat template needs. */
const withTemplate = (chatTemplate: string) => templateOf({ tokens: ['<s>', '</s>'], bosId: 0, eosId: 1, addBos: false, addEos: false, chatTemplate } as unknown as TokenizerConfig);
const CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/** Prometheus text → { name: value } for unlabelled samples; every sample must have a # TYPE line. */
function parseMetrics(text: string): Record<string, number> {
  const types = new Set<string>();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) types.add(line.split(' ')[2]);
    else if (line && !line.startsWith('#')) {
      const [name, value] = line.split(' ');
      expect(types.has(name)).toBe(true);
      out[name] = Number(value);
      expect(Number.isFinite(out[name])).toBe(true);
    }
  }
  return out;
}

describe('llama-server routes', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => {
    s = await startFake({ modelPath: '/m/chat.gguf', meta: { template: withTemplate(CHATML) } }, { contextLength: 128, delayMs: 1 });
  });
  afterAll(() => s.close());

  it('/props: context, model path, template, BOS/EOS text, default settings', async () => {
    const p = await (await fetch(`${s.url}/props`)).json();
    expect(p.default_generation_settings.n_ctx).toBe(128);
    expect(p.default_generation_settings.params).toMatchObject({ n_predict: -1, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 });
    expect(p).toMatchObject({ model_path: '/m/chat.gguf', chat_template: CHATML, bos_token: '<s>', eos_token: '</s>', total_slots: 1 });
    expect(p.build_info).toMatch(/^qllm \d/);
  });

  it('/apply-template returns exactly the text a chat request feeds the model', async () => {
    const messages = [{ role: 'system', content: 'sys' }, { role: 'user', content: 'hello there' }];
    const { prompt } = await (await post(`${s.url}/apply-template`, { messages })).json();
    expect(prompt).toBe('<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n');
    await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 2 });
    expect(s.fake.lastPrompt).toBe(prompt);
    const bad = await post(`${s.url}/apply-template`, { messages: [{ role: 'tool', content: 'x' }] });
    expect(bad.status).toBe(400);
    // With tools too (this template cannot show them: the generic JSON format's system prompt carries them).
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const withTools = (await (await post(`${s.url}/apply-template`, { messages, tools })).json()).prompt;
    expect(withTools).toContain('get_weather');
    await post(`${s.url}/v1/chat/completions`, { messages, tools, max_tokens: 2 });
    expect(s.fake.lastPrompt).toBe(withTools);
    expect((await post(`${s.url}/apply-template`, { messages, tools: [{ type: 'function' }] })).status).toBe(400);
  });

  it('/tokenize and /detokenize round-trip; pieces and BOS on request; bad ids are 400', async () => {
    const t = await (await post(`${s.url}/tokenize`, { content: 'alpha beta gamma' })).json();
    expect(t.tokens).toHaveLength(3);
    expect((await (await post(`${s.url}/detokenize`, { tokens: t.tokens })).json()).content).toBe('alpha beta gamma');
    const withBos = await (await post(`${s.url}/tokenize`, { content: 'alpha', add_special: true, with_pieces: true })).json();
    expect(withBos.tokens).toEqual([{ id: 0, piece: '<bos>' }, { id: t.tokens[0], piece: 'alpha' }]);
    for (const [body, param] of [[{ tokens: [-1] }, 'tokens[0]'], [{ tokens: [1, 2.5] }, 'tokens[1]'], [{ tokens: [40000] }, 'tokens[0]'], [{ tokens: 'a' }, 'tokens']] as const) {
      const r = await post(`${s.url}/detokenize`, body);
      expect(r.status).toBe(400);
      expect((await r.json()).error.param).toBe(param);
    }
    expect((await post(`${s.url}/tokenize`, {})).status).toBe(400);
    expect((await post(`${s.url}/tokenize`, { content: 5 })).status).toBe(400);
    expect((await post(`${s.url}/tokenize`, { content: 'x', with_pieces: 'yes' })).status).toBe(400);
  });

  it('/metrics is Prometheus text with llama-server\'s names; token counters grow', async () => {
    const r0 = await fetch(`${s.url}/metrics`);
    expect(r0.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m0 = parseMetrics(await r0.text());
    for (const k of ['prompt_tokens_total', 'tokens_predicted_total', 'prompt_seconds_total', 'tokens_predicted_seconds_total', 'requests_processing', 'requests_deferred', 'prompt_tokens_seconds', 'predicted_tokens_seconds', 'n_decode_total']) {
      expect(m0[`llamacpp:${k}`]).toBeGreaterThanOrEqual(0);
    }
    await post(`${s.url}/v1/completions`, { prompt: 'forever', max_tokens: 7 });
    const m1 = parseMetrics(await (await fetch(`${s.url}/metrics`)).text());
    expect(m1['llamacpp:tokens_predicted_total'] - m0['llamacpp:tokens_predicted_total']).toBe(7);
    expect(m1['llamacpp:prompt_tokens_total'] - m0['llamacpp:prompt_tokens_total']).toBe(2); // <bos> forever
    expect(m1['llamacpp:requests_processing']).toBe(0);
    expect(m1['llamacpp:n_tokens_max']).toBeGreaterThanOrEqual(9);
  });
});

describe('bounds before any encoding or rendering blocks the server', () => {
  it('refuses a prompt with more bytes than the context can hold, without tokenizing it', async () => {
    // 64 tokens of at most 4 bytes each: no more than 256 bytes can fit.
    const s = await startFake({ meta: { maxTokenBytes: 4, template: withTemplate(CHATML) } }, { contextLength: 64 });
    try {
      const big = 'x'.repeat(900_000);
      for (const [path, body] of [['/v1/completions', { prompt: big }], ['/v1/chat/completions', { messages: [{ role: 'user', content: big }] }], ['/api/generate', { model: 'm', prompt: big, raw: true }]] as const) {
        const r = await post(s.url + path, body);
        expect(r.status).toBe(400);
        const e = (await r.json()).error;
        expect(typeof e === 'string' ? e : e.message).toMatch(/context/);
        expect(typeof e === 'string' ? e : e.code).toMatch(/context/);
      }
      expect(s.fake.started).toBe(0); // never reached the model's tokenizer
      const ok = await post(`${s.url}/v1/completions`, { prompt: 'small enough', max_tokens: 2 });
      expect(ok.status).toBe(200);
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('stops a chat template that loops range(1e6) with a 400, and keeps serving', async () => {
    const s = await startFake({ meta: { template: withTemplate('{% for i in range(1000000) %}{{ i }}{% endfor %}{{ messages[0].content }}') } });
    try {
      for (const path of ['/apply-template', '/v1/chat/completions']) {
        const r = await post(s.url + path, { messages: [{ role: 'user', content: 'hi' }] });
        expect(r.status).toBe(400);
        expect((await r.json()).error.message).toMatch(/chat template did more than \d+ steps of work/);
      }
      // Nested loops too: each level's work counts.
      const nested = await startFake({ meta: { template: withTemplate('{% for i in range(2000) %}{% for j in range(2000) %}.{% endfor %}{% endfor %}') } });
      const r = await post(`${nested.url}/apply-template`, { messages: [{ role: 'user', content: 'hi' }] });
      expect(r.status).toBe(400);
      await nested.close();
      expect(s.fake.started).toBe(0);
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('/metrics answers 501 when turned off (--no-metrics)', async () => {
    const s = await startFake({ metrics: false });
    try {
      const r = await fetch(`${s.url}/metrics`);
      expect(r.status).toBe(501);
      expect((await r.json()).error.message).toMatch(/--no-metrics/);
    } finally {
      await s.close();
    }
  });
});
