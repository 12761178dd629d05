// Tool calls and response_format on /v1/chat/completions (and format on Ollama's
// routes) over the fake model, wire shapes checked with plain fetch: the fake
// is given Qwen 2.5's chat template (so the server renders the tools into it and
// reads <tool_call> blocks back) and scripted replies.
import { Ollama, type Tool as OllamaTool } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startFake } from './helpers.ts';
import { qwenTemplate, script, WEATHER } from './tool-fixtures.ts';

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
};
const ask = (content: string, extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content }], tools: [WEATHER], ...extra });

describe('tool calls on /v1/chat/completions (fake model, Qwen 2.5 template)', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let chat: string;
  beforeAll(async () => {
    s = await startFake({ meta: { template: qwenTemplate() } }, { delayMs: 1, script });
    chat = `${s.url}/v1/chat/completions`;
  });
  afterAll(() => s.close());

  it('renders the tools into the template and returns the call as tool_calls', async () => {
    const r = await post(chat, ask('Weather in Paris?'));
    expect(r.status).toBe(200);
    expect(s.fake.lastPrompt).toContain('<tools>\n{"type": "function", "function": {"name": "get_weather"');
    const choice = r.body.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls[0];
    expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    expect(s.fake.lastOpts?.grammar).toBeUndefined(); // auto: unconstrained
  });

  it('keeps the text before a call as content', async () => {
    const r = await post(chat, ask('Explain first'));
    expect(r.body.choices[0].message.content).toBe('Let me check.');
    expect(r.body.choices[0].message.tool_calls.map((c: { function: { name: string } }) => c.function.name)).toEqual(['get_weather']);
  });

  it('streams the call: one delta with index, id, type and name, then the arguments in fragments; finish_reason tool_calls', async () => {
    const res = await fetch(chat, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ask('Explain first', { stream: true })) });
    const events = await readSse(res);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const deltas = chunks.map((c) => c.choices[0].delta);
    expect(deltas[0]).toEqual({ role: 'assistant', content: '' });
    expect(deltas.map((d) => d.content ?? '').join('')).toBe('Let me check.');
    const calls = deltas.filter((d) => d.tool_calls).map((d) => d.tool_calls[0]);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(calls[0].id).toMatch(/^call_/);
    expect(calls.length).toBeGreaterThan(2); // the arguments came in more than one piece
    expect(calls.slice(1).every((c) => c.index === 0 && c.id === undefined && c.function.name === undefined)).toBe(true);
    expect(JSON.parse(calls.map((c) => c.function.arguments).join(''))).toEqual({ city: 'Paris' });
    // No markup leaks into the content.
    expect(deltas.some((d) => (d.content ?? '').includes('<tool'))).toBe(false);
    expect(chunks.map((c) => c.choices[0].finish_reason).filter(Boolean)).toEqual(['tool_calls']);
  });

  it('returns several calls with parallel replies, each with its own id and index', async () => {
    const r = await post(chat, ask('Two calls', { parallel_tool_calls: true }));
    const ids = r.body.choices[0].message.tool_calls.map((c: { id: string }) => c.id);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    const res = await fetch(chat, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ask('Two calls', { stream: true })) });
    const heads = (await readSse(res)).slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.tool_calls?.[0]).filter((c) => c?.id);
    expect(heads.map((h) => h.index)).toEqual([0, 1]);
  });

  it('feeds the call and its result back through the template, and answers', async () => {
    const first = await post(chat, ask('Weather in Paris?'));
    const call = first.body.choices[0].message.tool_calls[0];
    const r = await post(chat, {
      model: 'm', tools: [WEATHER],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21}' },
      ],
    });
    expect(s.fake.lastPrompt).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response>');
    expect(r.body.choices[0]).toMatchObject({ message: { role: 'assistant', content: 'It is 21 °C in Paris.' }, finish_reason: 'stop' });
    expect(r.body.choices[0].message.tool_calls).toBeUndefined();
  });

  it('a reply cut off by max_tokens inside a call ends with finish_reason length', async () => {
    const r = await post(chat, ask('Cut short', { max_tokens: 3 }));
    expect(r.body.choices[0].finish_reason).toBe('length');
  });

  it('tool_choice required and a named function constrain the reply with a grammar of the call syntax', async () => {
    await post(chat, ask('Weather in Paris?', { tool_choice: 'required' }));
    expect(s.fake.lastOpts?.grammar).toMatch(/tool-block/);
    expect(s.fake.lastOpts?.grammar).toContain('get_weather');
    const time = { type: 'function', function: { name: 'get_time' } };
    await post(chat, ask('Weather in Paris?', { tools: [WEATHER, time], tool_choice: { type: 'function', function: { name: 'get_time' } } }));
    expect(s.fake.lastOpts?.grammar).toContain('get_time');
    expect(s.fake.lastOpts?.grammar).not.toContain('get_weather');
  });

  it('tool_choice none: the tools are not shown and nothing is parsed', async () => {
    const r = await post(chat, ask('Weather in Paris?', { tool_choice: 'none' }));
    expect(s.fake.lastPrompt).not.toContain('# Tools');
    expect(r.body.choices[0].message.content).toContain('<tool_call>');
    expect(r.body.choices[0].finish_reason).toBe('stop');
  });

  it('response_format json_schema constrains chat and completions with the schema\'s grammar', async () => {
    const rf = { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, strict: true } };
    await post(chat, { model: 'm', messages: [{ role: 'user', content: 'hi' }], response_format: rf });
    expect(s.fake.lastOpts?.grammar).toMatch(/^n-kv ::= /m);
    await post(`${s.url}/v1/completions`, { model: 'm', prompt: 'x', response_format: { type: 'json_object' } });
    expect(s.fake.lastOpts?.grammar).toMatch(/^root ::= object/m);
    await post(`${s.url}/v1/completions`, { model: 'm', prompt: 'x', response_format: { type: 'text' } });
    expect(s.fake.lastOpts?.grammar).toBeUndefined();
  });

  it('refuses bad tool requests with a 400 naming the field', async () => {
    const bad: [object, string, RegExp][] = [
      [ask('q', { tools: { type: 'function' } }), 'tools', /'tools' must be an array/],
      [ask('q', { tools: [{ type: 'function', function: { name: 'a b' } }] }), 'tools', /1 to 64 letters/],
      [ask('q', { tool_choice: { type: 'function', function: { name: 'nope' } } }), 'tool_choice', /not among the tools/],
      [ask('q', { tool_choice: 'sometimes' }), 'tool_choice', /tool choice must be/],
      [{ model: 'm', messages: [{ role: 'user', content: 'q' }], tool_choice: 'required' }, 'tool_choice', /needs 'tools'/],
      [ask('q', { functions: [] }), 'functions', /deprecated/],
      [ask('q', { parallel_tool_calls: 'yes' }), 'parallel_tool_calls', /boolean/],
      [ask('q', { tool_choice: 'required', tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { not: {} } } } } }] }), 'tools', /tool 'f': its parameters/],
      [ask('q', { response_format: { type: 'json_object' } }), 'response_format', /cannot be combined with tools/],
      [ask('q', { response_format: { type: 'xml' } }), 'response_format', /"xml" is not supported/],
      [{ model: 'm', messages: [{ role: 'tool', content: 'r' }] }, 'messages[0].tool_call_id', /must be a string/],
      [{ model: 'm', messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: 3 } }] }] }, 'messages[0].tool_calls[0].function.arguments', /JSON text/],
      [{ model: 'm', messages: [{ role: 'assistant', tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: '{bad' } }] }, { role: 'user', content: 'q' }] }, null as unknown as string, /arguments are not JSON/],
    ];
    for (const [body, param, msg] of bad) {
      const r = await post(chat, body);
      expect([r.status, r.body.error.param, r.body.error.message]).toMatchObject([400, param, expect.stringMatching(msg)]);
      expect(r.body.error.message).not.toContain('\n');
    }
  });
});

describe('tool calls on a model the server cannot render for (no template): the generic JSON format', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => {
    s = await startFake({}, { script: (p) => (p.includes('Weather') ? ['{"tool_call": {"name": "get_weather", ', '"arguments": {"city": "Paris"}}}'] : undefined) });
  });
  afterAll(() => s.close());

  it('hands the tools to the model\'s chat() and reads its JSON reply', async () => {
    const r = await post(`${s.url}/v1/chat/completions`, ask('Weather in Paris?', { tool_choice: 'required', parallel_tool_calls: true }));
    expect(s.fake.lastOpts).toMatchObject({ tools: [WEATHER], toolChoice: 'required', parallelToolCalls: true });
    expect(r.body.choices[0].finish_reason).toBe('tool_calls');
    expect(JSON.parse(r.body.choices[0].message.tool_calls[0].function.arguments)).toEqual({ city: 'Paris' });
  });
});

describe('Ollama format', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => { s = await startFake(); });
  afterAll(() => s.close());

  it('"json" and a schema become the grammar of the reply', async () => {
    await post(`${s.url}/api/chat`, { model: 'x', messages: [{ role: 'user', content: 'q' }], format: 'json', stream: false });
    expect(s.fake.lastOpts?.grammar).toMatch(/^root ::= object/m);
    await post(`${s.url}/api/generate`, { model: 'x', prompt: 'q', format: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }, stream: false });
    expect(s.fake.lastOpts?.grammar).toMatch(/^ok-kv ::= /m);
    await post(`${s.url}/api/generate`, { model: 'x', prompt: 'q', format: '', stream: false });
    expect(s.fake.lastOpts?.grammar).toBeUndefined();
  });
});

describe('Ollama tools (fake model, Qwen 2.5 template)', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let ollama: Ollama;
  beforeAll(async () => {
    s = await startFake({ meta: { template: qwenTemplate() } }, { delayMs: 1, script });
    ollama = new Ollama({ host: s.url });
  });
  afterAll(() => s.close());
  const tools = [WEATHER as unknown as OllamaTool];

  it('returns the call with its arguments as an object, streamed and not', async () => {
    const r = await ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'Explain first' }], tools, stream: false });
    expect(r.message).toEqual({ role: 'assistant', content: 'Let me check.', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] });
    const lines = [];
    for await (const l of await ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'Explain first' }], tools, stream: true })) lines.push(l);
    expect(lines.map((l) => l.message.content).join('')).toBe('Let me check.');
    expect(lines.flatMap((l) => l.message.tool_calls ?? [])).toEqual([{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
    expect(lines.at(-1)?.done).toBe(true);
  });

  it('feeds the call and the tool result (matched by order) back through the template', async () => {
    const r = await ollama.chat({
      model: 'x', tools, stream: false,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: '{"temp_c": 21}', tool_name: 'get_weather' },
      ],
    });
    expect(s.fake.lastPrompt).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>');
    expect(s.fake.lastPrompt).toContain('<tool_response>\n{"temp_c": 21}\n</tool_response>');
    expect(r.message.content).toBe('It is 21 °C in Paris.');
  });

  it('lists the tools capability for a template with a call syntax', async () => {
    expect((await ollama.show({ model: 'x' })).capabilities).toEqual(['completion', 'tools']);
  });

  it('refuses format beside tools', async () => {
    const e = await ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'q' }], tools, format: 'json' }).catch((x) => x);
    expect(e).toMatchObject({ status_code: 400, error: expect.stringMatching(/'format' cannot be combined with 'tools'/) });
  });
});
