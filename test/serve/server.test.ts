// Queueing, auth, CORS, the stats endpoint, the page route and draining.
import { describe, expect, it } from 'vitest';
import { FifoQueue } from '../../src/serve/queue.ts';
import { createServer } from '../../src/serve/server.ts';
import { FakeModel } from './fake-model.ts';
import { readSse, startFake, until } from './helpers.ts';

const post = (url: string, body: unknown, init: RequestInit = {}) =>
  fetch(url, { method: 'POST', body: JSON.stringify(body), ...init, headers: { 'Content-Type': 'application/json', ...(init.headers as Record<string, string>) } });
const untilQueue = async (url: string, waiting: number) => {
  for (let i = 0; i < 500; i++) {
    const st = await (await fetch(`${url}/v1/qllm/stats`)).json();
    if (st.queue.waiting === waiting) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`queue never reached ${waiting} waiting`);
};
const forever = (max = 400) => ({ messages: [{ role: 'user', content: 'forever' }], max_tokens: max, stream: true });

describe('FifoQueue', () => {
  it('hands the model out one at a time in FIFO order and rejects past capacity', async () => {
    const q = new FifoQueue(2);
    const order: number[] = [];
    const r0 = await q.acquire();
    const p1 = q.acquire().then((rel) => { order.push(1); return rel; });
    const p2 = q.acquire().then((rel) => { order.push(2); return rel; });
    await expect(q.acquire()).rejects.toMatchObject({ status: 429 });
    expect(q.waiting).toBe(2);
    r0();
    r0(); // a second release must not admit two waiters
    const r1 = await p1;
    expect(order).toEqual([1]);
    r1();
    (await p2)();
    expect(order).toEqual([1, 2]);
    expect(q.running).toBe(false);
  });

  it('drops an aborted waiter and rejects all on drain', async () => {
    const q = new FifoQueue(3);
    const r0 = await q.acquire();
    const ac = new AbortController();
    const gone = q.acquire(ac.signal);
    const stays = q.acquire();
    ac.abort();
    await expect(gone).rejects.toMatchObject({ status: 499 });
    expect(q.waiting).toBe(1);
    q.rejectAll(Object.assign(new Error('drain'), { status: 503 }));
    await expect(stays).rejects.toMatchObject({ status: 503 });
    r0();
    expect(q.running).toBe(false);
  });
});

describe('server', () => {
  it('runs requests one at a time; a full queue answers 429; a waiting client that leaves frees its place', async () => {
    const s = await startFake({ queue: 1 }, { delayMs: 5 });
    try {
      const first = await post(`${s.url}/v1/chat/completions`, forever(200));
      expect(first.status).toBe(200);
      await until(() => s.fake.active === 1);
      const ac = new AbortController();
      const second = post(`${s.url}/v1/chat/completions`, forever(3), { signal: ac.signal }).catch((e) => e);
      await untilQueue(s.url, 1);
      const third = await post(`${s.url}/v1/chat/completions`, forever(3));
      expect(third.status).toBe(429);
      expect((await third.json()).error.code).toBe('rate_limit_exceeded');
      ac.abort(); // the waiting client leaves: its place frees
      expect(await second).toBeInstanceOf(Error);
      await untilQueue(s.url, 0);
      const fourth = post(`${s.url}/v1/chat/completions`, forever(3));
      const events = await readSse(first);
      expect(events.at(-1)).toBe('[DONE]');
      const r4 = await fourth;
      expect(r4.status).toBe(200);
      expect((await readSse(r4)).at(-1)).toBe('[DONE]');
      expect(s.fake.maxActive).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('requires the bearer key everywhere but /health (and the static page)', async () => {
    const s = await startFake({ apiKey: 'sekret' });
    try {
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      expect((await fetch(`${s.url}/`)).status).toBe(200);
      const no = await fetch(`${s.url}/v1/models`);
      expect(no.status).toBe(401);
      expect(no.headers.get('www-authenticate')).toBe('Bearer');
      expect((await no.json()).error.code).toBe('invalid_api_key');
      expect((await fetch(`${s.url}/v1/models`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await post(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }] })).status).toBe(401);
      const ok = await fetch(`${s.url}/v1/models`, { headers: { Authorization: 'Bearer sekret' } });
      expect(ok.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('refuses a non-loopback host without an API key, and warns with one', async () => {
    const fake = new FakeModel();
    expect(() => createServer(fake, { host: '0.0.0.0' })).toThrow(/--api-key/);
    const logs: string[] = [];
    const s = createServer(fake, { host: '0.0.0.0', port: 0, apiKey: 'k', log: (l) => logs.push(l) });
    await s.listen();
    await s.close();
    expect(logs.join('\n')).toMatch(/warning: listening on 0\.0\.0\.0/);
  });

  it('sends no CORS headers by default, and the configured origin with --cors', async () => {
    const plain = await startFake();
    try {
      const r = await fetch(`${plain.url}/v1/models`, { headers: { Origin: 'http://evil.example' } });
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect((await fetch(`${plain.url}/v1/models`, { method: 'OPTIONS' })).status).toBe(405);
    } finally {
      await plain.close();
    }
    const s = await startFake({ cors: 'http://localhost:3000' });
    try {
      const pre = await fetch(`${s.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://localhost:3000', 'Access-Control-Request-Method': 'POST' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
      expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
      expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/);
      const r = await fetch(`${s.url}/v1/models`);
      expect(r.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    } finally {
      await s.close();
    }
  });

  it('serves the chat page and the stats endpoint', async () => {
    const s = await startFake();
    try {
      const page = await fetch(`${s.url}/`);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(await page.text()).toMatch(/<title>qllm<\/title>/);
      await post(`${s.url}/v1/completions`, { prompt: 'a', max_tokens: 3 });
      const st = await (await fetch(`${s.url}/v1/qllm/stats`)).json();
      expect(st.gpu_memory).toEqual(s.fake.memory());
      expect(st.f16_weight_bytes).toBe(s.fake.info.f16WeightBytes);
      expect(st.process.rss).toBeGreaterThan(0);
      expect(st.queue).toEqual({ running: false, waiting: 0, capacity: 8 });
      expect(st.served).toBe(1);
      expect(st.last.completion_tokens).toBe(3);
    } finally {
      await s.close();
    }
  });

  it('close() lets the stream in flight end cleanly, rejects queued ones with 503, then stops', async () => {
    const s = await startFake({ drainMs: 50 }, { delayMs: 5 });
    const first = await post(`${s.url}/v1/chat/completions`, forever(400));
    await until(() => s.fake.active === 1);
    const queued = post(`${s.url}/v1/chat/completions`, forever(3));
    await untilQueue(s.url, 1);
    const closing = s.close();
    const q = await queued;
    expect(q.status).toBe(503);
    expect((await q.json()).error.code).toBe('shutting_down');
    const events = await readSse(first);
    // Cancelled after the grace period, the stream still ends with a finish chunk and [DONE].
    expect(events.at(-1)).toBe('[DONE]');
    expect(JSON.parse(events.at(-2)!).choices[0].finish_reason).toBe('stop');
    expect(events.length).toBeLessThan(400);
    await closing;
    expect(s.fake.active).toBe(0);
    expect(s.srv.server.listening).toBe(false);
  });
});
