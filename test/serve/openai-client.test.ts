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

  it('answers to any model name (one model is served)', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'any name' }] });
    expect(r.choices[0].message.content).toBe('You said: any name');
    expect(r.model).toBe('fake-model');
    expect((await client.models.retrieve('llama3:latest')).id).toBe('llama3:latest');
    const c = await client.completions.create({ model: 'text-davinci-003', prompt: 'x y', max_tokens: 5 });
    expect(c.choices[0].text).toBe('You said: x y');
  });

  it('returns chat logprobs with top_logprobs, streamed and not', async () => {
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'lp test' }], logprobs: true, top_logprobs: 2 });
    const content = r.choices[0].logprobs?.content ?? [];
    expect(content.map((c) => c.token)).toEqual(['You', 'said:', 'lp', 'test']);
    expect(content[0]).toEqual({
      token: 'You', logprob: -0.5, bytes: [...Buffer.from('You')],
      top_logprobs: [{ token: 'You', logprob: -0.5, bytes: [...Buffer.from('You')] }, { token: '<eos>', logprob: -1.5, bytes: [...Buffer.from('<eos>')] }],
    });
    expect(s.fake.lastOpts?.logprobs).toBe(2);
    // logprobs without top_logprobs: no alternatives.
    const r0 = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'a' }], logprobs: true });
    expect(r0.choices[0].logprobs?.content?.[0].top_logprobs).toEqual([]);
    expect(s.fake.lastOpts?.logprobs).toBe(0);
    // Not asked for: null, and the model is not asked either.
    const none = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'a' }] });
    expect(none.choices[0].logprobs).toBeNull();
    expect(s.fake.lastOpts?.logprobs).toBeUndefined();
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'lp test' }], logprobs: true, top_logprobs: 1, stream: true });
    const streamed = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed.map((c) => c.token)).toEqual(['You', 'said:', 'lp', 'test']);
    expect(streamed.every((c) => c.top_logprobs.length === 1 && c.top_logprobs[0].token === c.token)).toBe(true);
  });

  it('returns legacy completions logprobs (tokens, token_logprobs, top_logprobs, text_offset)', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'red green', max_tokens: 10, logprobs: 3 });
    const lp = r.choices[0].logprobs;
    expect(lp?.tokens).toEqual(['You', 'said:', 'red', 'green']);
    expect(lp?.token_logprobs).toEqual([-0.5, -0.5, -0.5, -0.5]);
    expect(lp?.top_logprobs?.[2]).toEqual({ red: -0.5, '<eos>': -1.5, '<bos>': -3 });
    // Offsets count from the start of the prompt ('red green', 9 characters), one piece after another.
    expect(lp?.text_offset).toEqual([9, 12, 17, 20]);
    const stream = await client.completions.create({ model: 'fake-model', prompt: 'red green', max_tokens: 10, logprobs: 1, stream: true });
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const c of stream) {
      tokens.push(...(c.choices[0]?.logprobs?.tokens ?? []));
      offsets.push(...(c.choices[0]?.logprobs?.text_offset ?? []));
    }
    expect(tokens).toEqual(['You', 'said:', 'red', 'green']);
    expect(offsets).toEqual([9, 12, 17, 20]);
  });

  it('raises the OpenAI error class for 400', async () => {
    await expect(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], max_tokens: 1_000_000 })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'max_tokens' });
  });
});
