// A reasoning model's thinking on the server (fake model, scripted replies, real
// chat templates): gpt-oss's harmony channels and Qwen3/DeepSeek-R1 <think> blocks
// come back as reasoning_content (streamed: delta.reasoning_content) apart from
// the content, as llama-server sends them; Ollama's /api/chat as message.thinking.
// reasoning_format none (per request, or --reasoning-format) leaves them inline;
// /v1/completions stays raw.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { templateOf } from '../../src/serve/model-meta.ts';
import { readSse, startFake } from './helpers.ts';
import { WEATHER } from './tool-fixtures.ts';

const template = (src: string, tokens = ['<|endoftext|>', '<|im_end|>']) => templateOf({
  model: 'gpt2', pre: undefined, tokens, scores: new Float32Array(2), tokenTypes: Int32Array.of(3, 3),
  merges: [], bosId: undefined, eosId: 1, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: src,
} as TokenizerConfig);
const HARMONY = readFileSync(new URL('../models/templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8');
const QWEN3 = readFileSync(new URL('../tools/templates/Qwen-Qwen3-0.6B.jinja', import.meta.url), 'utf8');
/** DeepSeek-R1's way: the generation prompt opens <think> for the model. */
const R1 = "{% for m in messages %}{% if m.role == 'user' %}<｜User｜>{{ m.content }}{% else %}<｜Assistant｜>{{ m.content }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}";

/** gpt-oss's reply, as generation prints it (the special tokens <|channel|> etc. are rendered; <|return|> ends it unseen). */
const HARMONY_REPLY = ['<|channel|>', 'analysis', '<|message|>', 'User says', ' hi.', '<|end|>', '<|start|>', 'assistant', '<|channel|>', 'final', '<|message|>', 'Hello', ' there!'];
const harmonyScript = (prompt: string) => (prompt.includes('Hi') ? HARMONY_REPLY : undefined);

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
};
const postStream = async (url: string, body: object) => {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  return res;
};
const hi = (extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...extra });
/** The deltas of a streamed chat completion. */
async function deltas(res: Response): Promise<{ content?: string; reasoning_content?: string; role?: string }[]> {
  const events = await readSse(res);
  expect(events.at(-1)).toBe('[DONE]');
  return events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta).filter(Boolean);
}
const joined = (ds: { content?: string; reasoning_content?: string }[], k: 'content' | 'reasoning_content') => ds.map((d) => d[k] ?? '').join('');

describe('gpt-oss (harmony) replies on /v1/chat/completions', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let chat: string;
  beforeAll(async () => {
    s = await startFake({ meta: { template: template(HARMONY, ['<|startoftext|>', '<|return|>']) } }, { script: harmonyScript });
    chat = `${s.url}/v1/chat/completions`;
  });
  afterAll(() => s.close());

  it('returns the analysis channel as reasoning_content and the final channel as content', async () => {
    const r = await post(chat, hi());
    expect(r.status).toBe(200);
    expect(s.fake.lastPrompt.endsWith('<|start|>assistant')).toBe(true);
    expect(r.body.choices[0].message).toEqual({ role: 'assistant', content: 'Hello there!', reasoning_content: 'User says hi.', refusal: null });
    expect(JSON.stringify(r.body)).not.toContain('<|');
  });

  it('streams delta.reasoning_content first, then delta.content, with no markup', async () => {
    const ds = await deltas(await postStream(chat, hi()));
    expect(ds[0]).toEqual({ role: 'assistant', content: '' });
    expect(joined(ds, 'reasoning_content')).toBe('User says hi.');
    expect(joined(ds, 'content')).toBe('Hello there!');
    const lastReasoning = ds.findLastIndex((d) => d.reasoning_content);
    const firstContent = ds.findIndex((d) => d.content);
    expect(lastReasoning).toBeLessThan(firstContent);
    expect(ds.every((d) => !('reasoning_content' in d && 'content' in d))).toBe(true); // one field per delta
    expect(JSON.stringify(ds)).not.toContain('<|');
  });

  it('reasoning_format none leaves the reply as generated, streamed or not', async () => {
    const r = await post(chat, hi({ reasoning_format: 'none' }));
    expect(r.body.choices[0].message.content).toBe(HARMONY_REPLY.join(''));
    expect(r.body.choices[0].message.reasoning_content).toBeUndefined();
    const ds = await deltas(await postStream(chat, hi({ reasoning_format: 'none' })));
    expect(joined(ds, 'content')).toBe(HARMONY_REPLY.join(''));
    expect(joined(ds, 'reasoning_content')).toBe('');
  });

  it('deepseek-legacy keeps the reply whole in content, with reasoning_content beside it only when not streamed', async () => {
    const r = await post(chat, hi({ reasoning_format: 'deepseek-legacy' }));
    expect(r.body.choices[0].message).toMatchObject({ content: HARMONY_REPLY.join(''), reasoning_content: 'User says hi.' });
    const ds = await deltas(await postStream(chat, hi({ reasoning_format: 'deepseek-legacy' })));
    expect(joined(ds, 'content')).toBe(HARMONY_REPLY.join(''));
    expect(joined(ds, 'reasoning_content')).toBe('');
  });

  it('takes reasoning_content back in an assistant turn: the template drops an earlier turn\'s analysis', async () => {
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello there!', reasoning_content: 'User says hi.' },
      { role: 'user', content: 'And again: Hi' },
    ];
    const r = await post(chat, { model: 'm', messages });
    expect(r.status).toBe(200);
    expect(s.fake.lastPrompt).toContain('<|start|>assistant<|channel|>final<|message|>Hello there!<|end|><|start|>user<|message|>And again: Hi<|end|><|start|>assistant');
    expect(s.fake.lastPrompt).not.toContain('User says hi.');
    const t = await post(`${s.url}/apply-template`, { messages });
    expect(t.body.prompt).toBe(s.fake.lastPrompt);
    const bad = await post(chat, { model: 'm', messages: [{ role: 'assistant', content: 'x', reasoning_content: 3 }, { role: 'user', content: 'Hi' }] });
    expect([bad.status, bad.body.error.param]).toEqual([400, 'messages[0].reasoning_content']);
  });

  it('refuses an unknown reasoning_format with a 400 naming it', async () => {
    const r = await post(chat, hi({ reasoning_format: 'hidden' }));
    expect([r.status, r.body.error.param]).toEqual([400, 'reasoning_format']);
    expect(r.body.error.message).toMatch(/one of "none", "auto", "deepseek", "deepseek-legacy"/);
  });

  it('leaves /v1/completions raw', async () => {
    const r = await post(`${s.url}/v1/completions`, { model: 'm', prompt: 'Hi' });
    expect(r.body.choices[0].text).toBe(HARMONY_REPLY.join(''));
    expect(r.body.choices[0].reasoning_content).toBeUndefined();
  });
});

describe('--reasoning-format none on the server', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => {
    s = await startFake({ reasoningFormat: 'none', meta: { template: template(HARMONY, ['<|startoftext|>', '<|return|>']) } }, { script: harmonyScript });
  });
  afterAll(() => s.close());

  it('passes replies through unless a request asks for the split', async () => {
    const raw = await post(`${s.url}/v1/chat/completions`, hi());
    expect(raw.body.choices[0].message).toEqual({ role: 'assistant', content: HARMONY_REPLY.join(''), refusal: null });
    const split = await post(`${s.url}/v1/chat/completions`, hi({ reasoning_format: 'auto' }));
    expect(split.body.choices[0].message).toMatchObject({ content: 'Hello there!', reasoning_content: 'User says hi.' });
  });
});

describe('<think> models on /v1/chat/completions', () => {
  it('Qwen3: splits the block the model opens, also with a tool call after it', async () => {
    const script = (p: string) => (p.includes('Weather') ? ['<think>\n', 'Need the', ' weather.\n</think>\n\n', '<tool_call>', '\n{"name": "get_weather", ', '"arguments": {"city": "Paris"}}', '\n</tool_call>']
      : ['<think>', '\nHmm', '.\n</th', 'ink>\n\n', 'Answer', '.']);
    const s = await startFake({ meta: { template: template(QWEN3) } }, { script });
    try {
      const chat = `${s.url}/v1/chat/completions`;
      const r = await post(chat, hi());
      expect(r.body.choices[0].message).toMatchObject({ content: 'Answer.', reasoning_content: 'Hmm.' });
      const ds = await deltas(await postStream(chat, hi()));
      expect([joined(ds, 'reasoning_content'), joined(ds, 'content')]).toEqual(['Hmm.', 'Answer.']);
      const call = await post(chat, { model: 'm', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER] });
      expect(call.body.choices[0]).toMatchObject({ finish_reason: 'tool_calls', message: { content: null, reasoning_content: 'Need the weather.' } });
      expect(JSON.parse(call.body.choices[0].message.tool_calls[0].function.arguments)).toEqual({ city: 'Paris' });
      const streamed = await deltas(await postStream(chat, { model: 'm', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER] }));
      expect(joined(streamed, 'reasoning_content')).toBe('Need the weather.');
      expect(joined(streamed, 'content')).toBe('');
      expect(streamed.some((d) => (d as { tool_calls?: unknown }).tool_calls)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('DeepSeek-R1: the template opened <think>, so the reply starts inside it', async () => {
    const s = await startFake({ meta: { template: template(R1) } }, { script: () => ['Greeting', '.\n</th', 'ink>\n\n', 'Hi', '!'] });
    try {
      const r = await post(`${s.url}/v1/chat/completions`, hi());
      expect(s.fake.lastPrompt.endsWith('<think>\n')).toBe(true);
      expect(r.body.choices[0].message).toMatchObject({ content: 'Hi!', reasoning_content: 'Greeting.' });
      const ds = await deltas(await postStream(`${s.url}/v1/chat/completions`, hi()));
      expect([joined(ds, 'reasoning_content'), joined(ds, 'content')]).toEqual(['Greeting.', 'Hi!']);
    } finally {
      await s.close();
    }
  });

  it('a model without reasoning is untouched: no reasoning_content, its <think>-like text stays', async () => {
    const s = await startFake({}, { script: () => ['<think>', 'x', '</think>', 'y'] });
    try {
      const r = await post(`${s.url}/v1/chat/completions`, hi());
      expect(r.body.choices[0].message).toEqual({ role: 'assistant', content: '<think>x</think>y', refusal: null });
    } finally {
      await s.close();
    }
  });
});

describe('Ollama: message.thinking', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => {
    s = await startFake({ meta: { template: template(HARMONY, ['<|startoftext|>', '<|return|>']) } }, { script: harmonyScript });
  });
  afterAll(() => s.close());
  const lines = async (res: Response) => (await res.text()).trim().split('\n').map((l) => JSON.parse(l));

  it('/api/chat sends the thinking apart, whole or line by line; think: false leaves it out', async () => {
    const r = await post(`${s.url}/api/chat`, { ...hi(), stream: false });
    expect(r.body.message).toEqual({ role: 'assistant', content: 'Hello there!', thinking: 'User says hi.' });
    const ls = await lines(await fetch(`${s.url}/api/chat`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...hi(), think: true }) }));
    expect(ls.map((l) => l.message.thinking ?? '').join('')).toBe('User says hi.');
    expect(ls.map((l) => l.message.content).join('')).toBe('Hello there!');
    expect(ls.at(-1).done).toBe(true);
    const off = await post(`${s.url}/api/chat`, { ...hi(), stream: false, think: false });
    expect(off.body.message).toEqual({ role: 'assistant', content: 'Hello there!' });
  });

  it('/api/generate sends `thinking` beside `response`; /api/show lists the thinking capability', async () => {
    const r = await post(`${s.url}/api/generate`, { model: 'm', prompt: 'Hi', stream: false });
    expect([r.body.response, r.body.thinking]).toEqual(['Hello there!', 'User says hi.']);
    const show = await post(`${s.url}/api/show`, { model: 'm' });
    expect(show.body.capabilities).toContain('thinking');
  });

  it('takes an assistant turn\'s thinking back, and refuses think levels', async () => {
    await post(`${s.url}/api/chat`, { model: 'm', stream: false, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there!', thinking: 'User says hi.' }, { role: 'user', content: 'Hi again' }] });
    expect(s.fake.lastPrompt).toContain('<|channel|>final<|message|>Hello there!<|end|>');
    const r = await post(`${s.url}/api/chat`, { ...hi(), think: 'high' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/'think' levels/);
  });

  it('think: true on a model that does not think is a 400, as Ollama answers', async () => {
    const plain = await startFake();
    try {
      const r = await post(`${plain.url}/api/chat`, { ...hi(), think: true });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/does not think/);
      const ok = await post(`${plain.url}/api/chat`, { ...hi(), stream: false, think: false });
      expect(ok.body.message).toEqual({ role: 'assistant', content: 'You said: Hi' });
    } finally {
      await plain.close();
    }
  });
});
