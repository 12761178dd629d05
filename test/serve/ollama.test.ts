// The official `ollama` npm client (pinned devDependency) against qllm serve's
// Ollama routes over the fake model: listing, chat and generate (streamed and
// not), option names, timing fields, and Ollama-shaped errors.
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake } from './helpers.ts';

describe('ollama client against qllm serve', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let ollama: Ollama;
  beforeAll(async () => {
    s = await startFake({ modelPath: '/models/tiny-chat.Q4_K_M.gguf' }, { delayMs: 2 });
    ollama = new Ollama({ host: s.url });
  });
  afterAll(() => s.close());

  it('lists the model (tags and ps) by file name, with version and show', async () => {
    const tags = await ollama.list();
    expect(tags.models.map((m) => m.name)).toEqual(['tiny-chat.Q4_K_M']);
    expect(tags.models[0]).toMatchObject({ size: s.fake.info.fileBytes, details: { format: 'gguf', family: 'fake', parameter_size: '220.00M' } });
    const ps = await ollama.ps();
    expect(ps.models[0]).toMatchObject({ name: 'tiny-chat.Q4_K_M', size_vram: s.fake.memory().total });
    expect((ps.models[0] as unknown as { context_length: number }).context_length).toBe(512);
    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+/);
    const show = await ollama.show({ model: 'anything:latest' });
    expect(show.capabilities).toEqual(['completion']);
    expect((show.model_info as unknown as Record<string, unknown>)['fake.context_length']).toBe(512);
  });

  it('chats, not streamed: the reply, done_reason and timings in ns', async () => {
    const r = await ollama.chat({ model: 'llama3.2', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'alpha beta' }], stream: false });
    expect(r.model).toBe('llama3.2'); // the name asked for
    expect(r.message).toEqual({ role: 'assistant', content: 'You said: alpha beta' });
    expect(r.done).toBe(true);
    expect(r.done_reason).toBe('stop');
    expect(r.eval_count).toBe(4);
    expect(r.prompt_eval_count).toBeGreaterThan(0);
    for (const k of ['total_duration', 'prompt_eval_duration', 'eval_duration'] as const) expect(Number.isInteger(r[k]) && r[k] >= 0).toBe(true);
    expect(r.total_duration).toBeGreaterThan(0);
    expect(s.fake.lastPrompt).toContain('<|system|> be brief');
  });

  it('chats streamed (Ollama\'s default) as NDJSON, the last line done with counts', async () => {
    const parts = [];
    for await (const p of await ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'one two three' }], stream: true })) parts.push(p);
    expect(parts.map((p) => p.message.content).join('')).toBe('You said: one two three');
    expect(parts.slice(0, -1).every((p) => !p.done)).toBe(true);
    const last = parts.at(-1)!;
    expect(last).toMatchObject({ done: true, done_reason: 'stop', eval_count: 5 });
    // Without `stream`, the server streams too (the client always sends it; curl need not).
    const raw = await fetch(`${s.url}/api/chat`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'a b' }] }) });
    expect(raw.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await raw.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBe(5);
    expect(lines.at(-1).done).toBe(true);
  });

  it('generates, streamed and not, with Ollama option names', async () => {
    const r = await ollama.generate({ model: 'x', prompt: 'forever', stream: false, options: { num_predict: 3, temperature: 0, top_k: 5, top_p: 0.5, min_p: 0.1, repeat_penalty: 1.2, seed: 42, stop: ['zzz'], num_ctx: 256 } });
    expect(r.response).toBe('tick0 tick1 tick2');
    expect(r.done_reason).toBe('length');
    expect(s.fake.lastOpts).toMatchObject({ maxTokens: 3, temperature: 0, topK: 5, topP: 0.5, minP: 0.1, repeatPenalty: 1.2, seed: 42, stop: ['zzz'] });
    let text = '';
    for await (const p of await ollama.generate({ model: 'x', prompt: 'red green', system: 'sys', stream: true })) text += p.response;
    expect(text).toBe('You said: red green');
    // A model without a template of its own gets the user turn through chat(); -1 runs to the end.
    expect(s.fake.lastPrompt).toContain('<|system|> sys');
    await ollama.generate({ model: 'x', prompt: 'a', stream: false, options: { num_predict: -1 } });
    expect(s.fake.lastOpts?.maxTokens).toBe(512);
    const rawMode = await ollama.generate({ model: 'x', prompt: 'plain words', raw: true, stream: false });
    expect(rawMode.response).toBe('You said: plain words');
    expect(s.fake.lastPrompt).toBe('plain words');
  });

  it('answers an empty request by "loading" at once, as Ollama does', async () => {
    const before = s.fake.started;
    const r = await ollama.generate({ model: 'x', prompt: '', stream: false });
    expect(r).toMatchObject({ done: true, done_reason: 'load', response: '' });
    const c = await ollama.chat({ model: 'x', messages: [], stream: false });
    expect(c).toMatchObject({ done: true, done_reason: 'load' });
    expect(s.fake.started).toBe(before);
  });

  it('returns logprobs when asked', async () => {
    const r = await ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'q' }], stream: false, logprobs: true, top_logprobs: 2 });
    expect(r.logprobs?.map((l) => l.token)).toEqual(['You', 'said:', 'q']);
    expect(r.logprobs?.[0].top_logprobs?.map((t) => t.token)).toEqual(['You', '<eos>']);
  });

  it('refuses what it cannot do with a clear Ollama error, and keeps serving', async () => {
    const refused: [() => Promise<unknown>, number, RegExp][] = [
      [() => ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'q' }], format: 'yaml' }), 400, /'format' must be "json" or a JSON schema/],
      [() => ollama.generate({ model: 'x', prompt: 'q', format: { type: 'array', uniqueItems: true } }), 400, /'format'.*uniqueItems/],
      [() => ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'q' }], tools: [{ type: 'function', function: { name: 'bad name' } }] }), 400, /'tools': .*1 to 64 letters/],
      [() => ollama.chat({ model: 'x', messages: [{ role: 'robot', content: 'q' }] }), 400, /supports system, user, assistant and tool/],
      [() => ollama.generate({ model: 'x', prompt: 'q', images: ['aGk='] }), 400, /text-only/],
      [() => ollama.generate({ model: 'x', prompt: 'q', suffix: 'z' }), 400, /fill-in-the-middle/],
      [() => ollama.generate({ model: 'x', prompt: 'q', options: { num_ctx: 100_000 } }), 400, /num_ctx.*-c 100000/],
      [() => ollama.generate({ model: 'x', prompt: 'q', options: { temperature: 'hot' as unknown as number } }), 400, /'options.temperature' must be a number/],
      [() => ollama.generate({ model: 'x', prompt: 'q', options: { num_predict: 0 } }), 400, /num_predict/],
      [() => ollama.generate({ model: '', prompt: 'q' }), 400, /'model' is required/],
      [() => ollama.pull({ model: 'llama3' }), 501, /qllm pull/],
    ];
    for (const [call, status, msg] of refused) {
      const e = await call().then(() => null, (err: { status_code?: number; error?: string }) => err);
      expect(e).toMatchObject({ status_code: status });
      expect(e?.error).toMatch(msg);
    }
    const bad = await fetch(`${s.url}/api/nope`);
    expect(bad.status).toBe(404);
    expect(typeof (await bad.json()).error).toBe('string'); // Ollama's shape, not OpenAI's
    expect((await ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'still here' }] })).message.content).toBe('You said: still here');
  });

  it('ends a stream that fails mid-way with an error line', async () => {
    const r = await fetch(`${s.url}/api/chat`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'explode now' }] }) });
    expect(r.status).toBe(200);
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1).error).toMatch(/device lost/);
    expect(lines.some((l) => l.done)).toBe(false);
  });
});
