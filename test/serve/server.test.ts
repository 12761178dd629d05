// Queueing, auth, CORS, the stats endpoint, the page route and draining.
import { describe, expect, it } from 'vitest';
import { FifoQueue } from '../../src/serve/queue.ts';
import { createServer } from '../../src/serve/server.ts';
import { FakeModel } from './fake-model.ts';
import { rawRequest, readSse, startFake, until } from './helpers.ts';

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
      const r = await fetch(`${plain.url}/v1/models`);
      expect(r.status).toBe(200);
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
      // The allowed page's own requests go through; another page's do not.
      const chat = await post(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] }, { headers: { Origin: 'http://localhost:3000' } });
      expect(chat.status).toBe(200);
      expect(chat.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
      expect((await fetch(`${s.url}/v1/models`, { headers: { Origin: 'http://localhost:3001' } })).status).toBe(403);
    } finally {
      await s.close();
    }
    const any = await startFake({ cors: '*' });
    try {
      const r = await post(`${any.url}/v1/completions`, { prompt: 'a', max_tokens: 2 }, { headers: { Origin: 'https://elsewhere.example' } });
      expect(r.status).toBe(200);
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
    } finally {
      await any.close();
    }
  });

  it('without an API key, refuses foreign Host names (DNS rebinding) and cross-origin pages; text/plain bodies get 415', async () => {
    const s = await startFake();
    const port = new URL(s.url).port;
    try {
      const get = (host: string) => rawRequest(s.url, `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      for (const host of ['attacker.example', `attacker.example:${port}`, '127.0.0.1.nip.io', 'localhost.attacker.example']) {
        const r = await get(host);
        expect(r.status).toBe(403);
        expect(JSON.parse(r.body).error.code).toBe('forbidden_host');
      }
      for (const host of ['localhost', `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST.']) expect((await get(host)).status).toBe(200);
      // A foreign page, and a sandboxed one (Origin: null), are refused, reading or writing.
      for (const origin of ['http://evil.example', 'null', `http://localhost:${Number(port) + 1}`]) {
        const r = await post(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] }, { headers: { Origin: origin } });
        expect(r.status).toBe(403);
        expect((await r.json()).error.code).toBe('forbidden_origin');
        expect((await fetch(`${s.url}/v1/qllm/stats`, { headers: { Origin: origin } })).status).toBe(403);
        const ollama = await fetch(`${s.url}/api/tags`, { headers: { Origin: origin } });
        expect(ollama.status).toBe(403);
        expect((await ollama.json()).error).toMatch(/cross-origin/); // Ollama's error shape under /api/
      }
      // The server's own page (same origin) is served, also as https:// behind a TLS proxy.
      expect((await post(`${s.url}/v1/completions`, { prompt: 'a', max_tokens: 2 }, { headers: { Origin: s.url } })).status).toBe(200);
      expect((await fetch(`${s.url}/v1/models`, { headers: { Origin: s.url.replace('http:', 'https:') } })).status).toBe(200);
      // A "simple" cross-origin POST needs no preflight: text/plain, forms and no type at all are refused.
      for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': type }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
        expect(r.status).toBe(415);
        expect((await r.json()).error.code).toBe('unsupported_media_type');
      }
      const none = await rawRequest(s.url, 'POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
      expect(none.status).toBe(415);
      expect(JSON.parse(none.body).error).toMatch(/Content-Type/);
      expect(s.fake.started).toBe(1); // only the same-origin request generated
    } finally {
      await s.close();
    }
    // With an API key the key guards the server: any Host name is served.
    const keyed = await startFake({ apiKey: 'k' });
    try {
      const r = await rawRequest(keyed.url, 'GET /v1/models HTTP/1.1\r\nHost: my-server.example\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n');
      expect(r.status).toBe(200);
    } finally {
      await keyed.close();
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
      expect(st.queue).toEqual({ running: false, busy: 0, slots: 1, waiting: 0, capacity: 64 }); // the fake model has no sessions: one slot
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
