// gpt-oss (harmony) tool calls on the server: the fake model with the real
// gpt-oss template (the server renders the tools into its developer message) and
// scripted replies as generation prints them (the harmony markers are rendered
// tokens; <|call|> ends generation unseen). The call message comes back as
// tool_calls, streamed or not, its thinking as reasoning_content; the call and
// its result go back through the template; a forced call gets the harmony grammar.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { templateOf } from '../../src/serve/model-meta.ts';
import { readSse, startFake } from './helpers.ts';
import { WEATHER } from './tool-fixtures.ts';

const HARMONY = readFileSync(new URL('../models/templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8');
const template = () => templateOf({
  model: 'gpt2', pre: undefined, tokens: ['<|startoftext|>', '<|return|>'], scores: new Float32Array(2), tokenTypes: Int32Array.of(3, 3),
  merges: [], bosId: undefined, eosId: 1, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: HARMONY,
} as TokenizerConfig);

const THINK = ['<|channel|>', 'analysis', '<|message|>', 'Need the', ' weather.', '<|end|>', '<|start|>', 'assistant'];
/** The recipient in the channel header, with a constraint, as gpt-oss writes it. */
const CALL = ['<|channel|>', 'commentary', ' to', '=functions', '.get', '_weather', ' ', '<|constrain|>', 'json', '<|message|>', '{"city', '": "Par', 'is"}'];
const RESULT = '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>';

function script(prompt: string): string[] | undefined {
  if (prompt.includes(RESULT)) return ['<|channel|>', 'final', '<|message|>', 'It is', ' 21 °C', ' in Paris.'];
  if (prompt.includes('Weather in Paris?')) return [...THINK, ...CALL];
  // The recipient in the role header, right after the prompt's <|start|>assistant.
  if (prompt.includes('Recipient first')) return [' to', '=functions', '.get_weather', '<|channel|>', 'commentary', ' json', '<|message|>', '{"city": "Oslo"}'];
  if (prompt.includes('Preamble')) return ['<|channel|>', 'commentary', '<|message|>', 'Let me', ' check.', '<|end|>', '<|start|>', 'assistant', ...CALL];
  if (prompt.includes('Python')) return [...THINK, '<|channel|>', 'commentary to=python', '<|message|>', 'print(1)'];
  return undefined;
}

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
};
const ask = (content: string, extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content }], tools: [WEATHER], ...extra });
type Delta = { content?: string; reasoning_content?: string; tool_calls?: { index: number; id?: string; type?: string; function: { name?: string; arguments: string } }[] };
async function deltas(url: string, body: object): Promise<{ ds: Delta[]; finish: string[] }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  const events = await readSse(res);
  expect(events.at(-1)).toBe('[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  return { ds: chunks.map((c) => c.choices[0]?.delta).filter(Boolean), finish: chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean) };
}
const joined = (ds: Delta[], k: 'content' | 'reasoning_content') => ds.map((d) => d[k] ?? '').join('');

describe('gpt-oss tool calls on /v1/chat/completions (fake model, the gpt-oss template)', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let chat: string;
  beforeAll(async () => {
    s = await startFake({ meta: { template: template() } }, { delayMs: 1, script });
    chat = `${s.url}/v1/chat/completions`;
  });
  afterAll(() => s.close());

  it('renders the tools into the developer message and returns the call as tool_calls, its thinking as reasoning_content', async () => {
    const r = await post(chat, ask('Weather in Paris?'));
    expect(r.status).toBe(200);
    expect(s.fake.lastPrompt).toContain('<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n// Current weather in a city.\ntype get_weather = (_: {\ncity: string,\n}) => any;');
    expect(s.fake.lastPrompt.endsWith('<|start|>assistant')).toBe(true);
    expect(s.fake.lastOpts?.grammar).toBeUndefined(); // auto: unconstrained
    const choice = r.body.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message).toMatchObject({ role: 'assistant', content: null, reasoning_content: 'Need the weather.' });
    expect(choice.message.tool_calls).toHaveLength(1);
    expect(choice.message.tool_calls[0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } });
    expect(choice.message.tool_calls[0].id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(JSON.stringify(r.body)).not.toContain('<|');
  });

  it('streams the thinking, then the call: one delta with index, id, type and name, then the arguments in fragments', async () => {
    const { ds, finish } = await deltas(chat, ask('Weather in Paris?'));
    expect(joined(ds, 'reasoning_content')).toBe('Need the weather.');
    expect(joined(ds, 'content')).toBe('');
    const calls = ds.filter((d) => d.tool_calls).map((d) => d.tool_calls?.[0]);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(calls[0]?.id).toMatch(/^call_/);
    expect(calls.length).toBeGreaterThan(2); // the arguments came in more than one piece
    expect(calls.slice(1).every((c) => c?.index === 0 && c.id === undefined && c.function.name === undefined)).toBe(true);
    expect(calls.map((c) => c?.function.arguments).join('')).toBe('{"city": "Paris"}');
    expect(JSON.stringify(ds)).not.toContain('<|');
    expect(finish).toEqual(['tool_calls']);
  });

  it('reads the recipient in the role header, and keeps a commentary preamble as content', async () => {
    const r = await post(chat, ask('Recipient first'));
    expect(r.body.choices[0].message.tool_calls[0].function).toEqual({ name: 'get_weather', arguments: '{"city": "Oslo"}' });
    const p = await post(chat, ask('Preamble'));
    expect(p.body.choices[0].message).toMatchObject({ content: 'Let me check.', tool_calls: [{ function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] });
    const { ds } = await deltas(chat, ask('Preamble'));
    expect(joined(ds, 'content')).toBe('Let me check.');
    expect(ds.filter((d) => d.tool_calls).map((d) => d.tool_calls?.[0].function.arguments).join('')).toBe('{"city": "Paris"}');
  });

  it('feeds the call (with its thinking) and the result back through the template in harmony form, and answers', async () => {
    const first = await post(chat, ask('Weather in Paris?'));
    const m = first.body.choices[0].message;
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, reasoning_content: m.reasoning_content, tool_calls: m.tool_calls },
      { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '{"temp_c": 21}' },
    ];
    const r = await post(chat, { model: 'm', tools: [WEATHER], messages });
    expect(s.fake.lastPrompt).toContain('<|start|>user<|message|>Weather in Paris?<|end|>'
      + '<|start|>assistant<|channel|>analysis<|message|>Need the weather.<|end|>'
      + '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>'
      + `${RESULT}"{\\"temp_c\\": 21}"<|end|><|start|>assistant`);
    expect(r.body.choices[0]).toMatchObject({ message: { role: 'assistant', content: 'It is 21 °C in Paris.' }, finish_reason: 'stop' });
    expect(r.body.choices[0].message.tool_calls).toBeUndefined();
  });

  it('tool_choice required and a named function constrain the reply with the harmony call grammar', async () => {
    await post(chat, ask('Weather in Paris?', { tool_choice: 'required' }));
    expect(s.fake.lastOpts?.grammar).toContain('" to=functions.get_weather"');
    expect(s.fake.lastOpts?.grammar).toMatch(/^root ::= \(h-msg "<\|start\|>assistant"\)\* tool-call$/m);
    const time = { type: 'function', function: { name: 'get_time' } };
    await post(chat, ask('Weather in Paris?', { tools: [WEATHER, time], tool_choice: { type: 'function', function: { name: 'get_time' } } }));
    expect(s.fake.lastOpts?.grammar).toContain('get_time');
    expect(s.fake.lastOpts?.grammar).not.toContain('get_weather');
  });

  it('tool_choice none: the tools are not shown and the call is dropped as before', async () => {
    const r = await post(chat, ask('Weather in Paris?', { tool_choice: 'none' }));
    expect(s.fake.lastPrompt).not.toContain('namespace functions');
    expect(r.body.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: '', reasoning_content: 'Need the weather.' } });
  });

  it('a built-in tool\'s call (to=python) is dropped, not returned', async () => {
    const r = await post(chat, ask('Python please'));
    expect(r.body.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: '', reasoning_content: 'Need the weather.' } });
  });

  it('reasoning_format none: the reply\'s other messages stay in the content as written, the call is still read', async () => {
    const r = await post(chat, ask('Weather in Paris?', { reasoning_format: 'none' }));
    expect(r.body.choices[0].message).toMatchObject({ content: '<|channel|>analysis<|message|>Need the weather.<|end|>', tool_calls: [{ function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] });
    const { ds } = await deltas(chat, ask('Weather in Paris?', { reasoning_format: 'none' }));
    expect(joined(ds, 'content')).toBe('<|channel|>analysis<|message|>Need the weather.<|end|>');
    expect(ds.filter((d) => d.tool_calls).map((d) => d.tool_calls?.[0].function.arguments).join('')).toBe('{"city": "Paris"}');
  });
});

describe('gpt-oss tool calls on Ollama\'s /api/chat', () => {
  it('returns the call with object arguments and the thinking, streamed or not', async () => {
    const s = await startFake({ meta: { template: template() } }, { script });
    try {
      const r = await post(`${s.url}/api/chat`, { ...ask('Weather in Paris?'), stream: false });
      expect(r.body.message).toMatchObject({ role: 'assistant', content: '', thinking: 'Need the weather.', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] });
      const res = await fetch(`${s.url}/api/chat`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ask('Weather in Paris?')) });
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.flatMap((l) => l.message.tool_calls ?? [])).toMatchObject([{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
      expect(lines.map((l) => l.message.content).join('')).toBe('');
      const show = await post(`${s.url}/api/show`, { model: 'm' });
      expect(show.body.capabilities).toEqual(expect.arrayContaining(['tools', 'thinking']));
    } finally {
      await s.close();
    }
  });
});
