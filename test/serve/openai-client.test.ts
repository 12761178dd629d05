// The official `openai` npm client against createServer(FakeModel): the shapes it
// parses are the shapes OpenAI documents.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, until } from './helpers.ts';

describe('openai client against qllm serve', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let client: OpenAI;
  beforeAll(async () => {
    s = await startFake({}, { delayMs: 2 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => s.close());

  it('lists the model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['fake-model']);
    expect((await client.models.retrieve('fake-model')).id).toBe('fake-model');
  });

  it('answers a non-streaming chat completion with usage', async () => {
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'alpha beta' }], temperature: 0, seed: 7, top_p: 0.9 });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message).toMatchObject({ role: 'assistant', content: 'You said: alpha beta' });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage).toMatchObject({ completion_tokens: 4, total_tokens: r.usage!.prompt_tokens + 4 });
    expect(s.fake.lastOpts).toMatchObject({ temperature: 0, seed: 7, topP: 0.9 });
    expect(s.fake.lastPrompt).toContain('<|system|> be brief');
  });

  it('streams a chat completion chunk by chunk, then usage', async () => {
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'one two three' }], stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('You said: one two three');
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(fin.map((c) => c.choices[0].finish_reason)).toEqual(['stop']);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 5 });
    expect((last as unknown as { timings: { gpu_memory: { total: number } } }).timings.gpu_memory.total).toBe(s.fake.memory().total);
  });

  it('stops at max_tokens with finish_reason length, and at a stop string', async () => {
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'forever' }], max_tokens: 3 });
    expect(r.choices[0].message.content).toBe('tick0 tick1 tick2');
    expect(r.choices[0].finish_reason).toBe('length');
    const r2 = await client.chat.completions.create({ messages: [{ role: 'user', content: 'forever' }], max_completion_tokens: 50, stop: [' tick3', 'zzz'] } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(r2.choices[0].message.content).toBe('tick0 tick1 tick2');
    expect(s.fake.lastOpts?.stop).toEqual([' tick3', 'zzz']);
  });

  it('serves legacy completions, streaming and not', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'red green', max_tokens: 10 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0].text).toBe('You said: red green');
    const stream = await client.completions.create({ model: 'fake-model', prompt: 'forever', max_tokens: 4, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) { text += c.choices[0]?.text ?? ''; finish = c.choices[0]?.finish_reason ?? finish; }
    expect(text).toBe('tick0 tick1 tick2 tick3');
    expect(finish).toBe('length');
  });

  it('aborts the generation when the client aborts mid-stream, and keeps serving', async () => {
    const before = s.fake.aborted;
    const ac = new AbortController();
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'forever' }], max_tokens: 500, stream: true }, { signal: ac.signal });
    let got = 0;
    // openai v6 ends the iteration quietly on abort (older versions throw): either is fine.
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content) got++;
        if (got === 3) ac.abort();
      }
    } catch (e) {
      expect((e as Error).name).toMatch(/Abort/);
    }
    expect(got).toBe(3);
    await until(() => s.fake.aborted === before + 1 && s.fake.active === 0);
    expect(s.logs.some((l) => l.includes('(client closed)'))).toBe(true);
    const h = await fetch(`${s.url}/health`);
    expect(await h.json()).toEqual({ status: 'ok' });
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'after' }] });
    expect(r.choices[0].message.content).toBe('You said: after');
  });

  it('raises the OpenAI error classes for 404 and 400', async () => {
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], max_tokens: 1_000_000 })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'max_tokens' });
  });
});
