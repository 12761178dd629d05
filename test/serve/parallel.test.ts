// `qllm serve --parallel N` over the fake model with sessions (fake-parallel.ts):
// N requests generate at once in their own slots and their streams stay
// unmixed, the rest wait in the queue (64 by default: a burst waits instead of
// getting 429), a client that disconnects frees its slot at once, and the
// prompt cache picks the free slot whose cache shares the prompt's prefix and
// reports the reused tokens in usage and timings. Draining waits for every
// stream in flight.
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/serve.ts';
import { UsageError } from '../../src/errors.ts';
import { createServer, type ServerOptions } from '../../src/serve/server.ts';
import { FakeParallelModel } from './fake-parallel.ts';
import { readSse, until } from './helpers.ts';

async function start(parallel: number, opts: ServerOptions = {}, delayMs = 5) {
  const fake = new FakeParallelModel(parallel, { delayMs });
  const srv = createServer(fake, { port: 0, log: () => {}, ...opts });
  const { url } = await srv.listen();
  return { fake, url, close: () => srv.close() };
}

const post = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal });
const completion = (url: string, body: unknown) =>
  fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const stats = async (url: string) => (await fetch(`${url}/v1/qllm/stats`)).json();

/** A streamed chat reply's text, checking it is one well-formed stream. */
async function streamText(res: Response): Promise<string> {
  expect(res.status).toBe(200);
  const data = await readSse(res);
  expect(data.at(-1)).toBe('[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  expect(chunks.filter((c) => c.choices[0]?.finish_reason).length).toBe(1);
  return chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
}

describe('qllm serve with several slots', () => {
  it('--parallel N (default 4, 1…64) loads that many sequences and makes that many slots; the queue holds 64 by default', () => {
    expect(parseServeArgs(['m.gguf'], {})).toMatchObject({ load: { parallel: 4 }, server: { parallel: 4, queue: 64 } });
    expect(parseServeArgs(['m.gguf', '--parallel', '1', '--queue', '3'], {})).toMatchObject({ load: { parallel: 1 }, server: { parallel: 1, queue: 3 } });
    for (const v of ['0', '65', '2.5', 'x']) {
      expect(() => parseServeArgs(['m.gguf', '--parallel', v], {})).toThrow(UsageError);
      expect(() => parseServeArgs(['m.gguf', '--parallel', v], {})).toThrow(/--parallel/);
    }
  });

  it('generates --parallel requests at once, each stream its own, the rest queued rather than refused', async () => {
    const s = await start(3, { parallel: 3 });
    try {
      const words = (i: number) => Array.from({ length: 6 }, (_, k) => `c${i}w${k}`).join(' ');
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => post(s.url, { messages: [{ role: 'user', content: words(i) }], stream: true }).then(streamText)));
      for (const [i, text] of replies.entries()) expect(text).toBe(`You said: ${words(i)}`);
      expect(s.fake.maxActive).toBe(3);
      expect(s.fake.sessions.map((x) => x.prompts.length).reduce((a, b) => a + b)).toBe(10);
      expect(s.fake.sessions.every((x) => x.prompts.length > 0)).toBe(true); // every slot served
      const st = await stats(s.url);
      expect(st.queue).toEqual({ running: false, busy: 0, slots: 3, waiting: 0, capacity: 64 });
    } finally {
      await s.close();
    }
  });

  it('uses no more slots than the model holds, and one for a model without sessions', async () => {
    const s = await start(2, { parallel: 8 });
    try {
      expect((await stats(s.url)).queue.slots).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('a client that disconnects frees its slot at once: a queued request starts while the other slot keeps streaming', async () => {
    const s = await start(2, { parallel: 2 }, 10);
    const acs = [new AbortController(), new AbortController()];
    try {
      const forever = acs.map((ac, i) => post(s.url, { messages: [{ role: 'user', content: `forever ${i}` }], stream: true }, ac.signal));
      const [a, b] = await Promise.all(forever);
      expect([a.status, b.status]).toEqual([200, 200]);
      const queued = post(s.url, { messages: [{ role: 'user', content: 'the third one' }], stream: true });
      await until(() => s.fake.started === 2);
      while ((await stats(s.url)).queue.waiting !== 1) await new Promise((r) => setTimeout(r, 5));
      expect(s.fake.started).toBe(2); // both slots busy: the third waits
      acs[0].abort();
      await a.body?.cancel().catch(() => {});
      expect(await streamText(await queued)).toBe('You said: the third one');
      expect(s.fake.aborted).toBe(1);
      expect(s.fake.active).toBe(1); // the other stream still runs
    } finally {
      acs[1].abort();
      await s.close();
    }
  });

  it('the prompt cache: a prompt that extends a free slot\'s last one goes to that slot and reports its cached tokens', async () => {
    const s = await start(2, { parallel: 2 });
    try {
      const a = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu';
      const b = 'one two three four five six seven eight nine ten eleven twelve';
      const first = await (await completion(s.url, { prompt: a, max_tokens: 3 })).json();
      expect(first.usage.prompt_tokens_details).toEqual({ cached_tokens: 0 });
      await (await completion(s.url, { prompt: b, max_tokens: 3 })).json(); // BOS only in common with a's slot: the other, least recently used slot
      expect(s.fake.sessions.map((x) => x.prompts.length)).toEqual([1, 1]);
      const r = await (await completion(s.url, { prompt: `${a} nu xi`, max_tokens: 2 })).json();
      expect(s.fake.sessions[0].prompts).toEqual([a, `${a} nu xi`]);
      expect(r.usage.prompt_tokens_details.cached_tokens).toBe(13); // BOS + 12 words
      expect(r.timings.prompt_tokens_cached).toBe(13);
      // Streamed with include_usage: the same figure in the last chunk.
      const res = await post(s.url, { messages: [{ role: 'user', content: 'hello' }], stream: true, stream_options: { include_usage: true } });
      const chunks = (await readSse(res)).slice(0, -1).map((d) => JSON.parse(d));
      expect(chunks.at(-1).usage.prompt_tokens_details).toEqual({ cached_tokens: expect.any(Number) });
      expect(chunks.at(-1).timings.prompt_tokens_cached).toBe(chunks.at(-1).usage.prompt_tokens_details.cached_tokens);
    } finally {
      await s.close();
    }
  });

  it('close() lets every stream in flight finish, and rejects the queued ones with 503', async () => {
    const s = await start(2, { parallel: 2, queue: 4 }, 5);
    const words = 'a b c d e f g h';
    const running = [0, 1].map(() => post(s.url, { messages: [{ role: 'user', content: words }], stream: true }));
    await until(() => s.fake.started === 2);
    const queued = post(s.url, { messages: [{ role: 'user', content: 'later' }] });
    await until(() => s.fake.active === 2);
    await new Promise((r) => setTimeout(r, 20));
    const closing = s.close();
    expect((await queued).status).toBe(503);
    for (const r of await Promise.all(running)) expect(await streamText(r)).toBe(`You said: ${words}`);
    await closing;
  });
});
