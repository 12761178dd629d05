// Every bad request gets an OpenAI-style JSON error with the right status, and
// the server keeps answering (/health right after each one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, readSse, startFake } from './helpers.ts';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

describe('bad input → JSON errors, server keeps running', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => { s = await startFake({ maxBodyBytes: 4096 }, { contextLength: 64 }); });
  afterAll(() => s.close());

  const chat = (body: unknown) => ({ method: 'POST', path: '/v1/chat/completions', body: typeof body === 'string' ? body : JSON.stringify(body) });
  const cases: { name: string; req: { method: string; path: string; body?: string }; status: number; code: string; param?: string; msg?: RegExp }[] = [
    { name: 'malformed JSON', req: chat('{"messages": ['), status: 400, code: 'invalid_json' },
    { name: 'empty body', req: chat(''), status: 400, code: 'invalid_json' },
    { name: 'body not an object', req: chat('[1,2]'), status: 400, code: 'invalid_body' },
    { name: 'missing messages', req: chat({ model: 'fake-model' }), status: 400, code: 'missing_field', param: 'messages' },
    { name: 'messages not an array', req: chat({ messages: 'hi' }), status: 400, code: 'invalid_type', param: 'messages' },
    { name: 'empty messages', req: chat({ messages: [] }), status: 400, code: 'invalid_value', param: 'messages' },
    { name: 'bad role', req: chat({ messages: [{ role: 'function', content: 'x' }] }), status: 400, code: 'invalid_value', param: 'messages[0].role' },
    { name: 'content a number', req: chat({ messages: [{ role: 'user', content: 5 }] }), status: 400, code: 'invalid_type', param: 'messages[0].content' },
    { name: 'image part', req: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), status: 400, code: 'invalid_value', param: 'messages[0].content[0]' },
    { name: 'temperature a string', req: chat({ messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }), status: 400, code: 'invalid_type', param: 'temperature', msg: /'temperature' must be a number/ },
    { name: 'temperature out of range', req: chat({ messages: [{ role: 'user', content: 'x' }], temperature: 9 }), status: 400, code: 'invalid_value', param: 'temperature' },
    { name: 'top_k fractional', req: chat({ messages: [{ role: 'user', content: 'x' }], top_k: 1.5 }), status: 400, code: 'invalid_value', param: 'top_k' },
    { name: 'stream not boolean', req: chat({ messages: [{ role: 'user', content: 'x' }], stream: 'yes' }), status: 400, code: 'invalid_type', param: 'stream' },
    { name: 'stop a number', req: chat({ messages: [{ role: 'user', content: 'x' }], stop: 3 }), status: 400, code: 'invalid_type', param: 'stop' },
    { name: 'n = 2', req: chat({ messages: [{ role: 'user', content: 'x' }], n: 2 }), status: 400, code: 'invalid_value', param: 'n' },
    { name: 'max_tokens beyond the context', req: chat({ messages: [{ role: 'user', content: 'x' }], max_tokens: 65 }), status: 400, code: 'context_length_exceeded', param: 'max_tokens' },
    { name: 'max_tokens zero', req: chat({ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }), status: 400, code: 'invalid_value', param: 'max_tokens' },
    { name: 'prompt longer than the context (model refuses)', req: chat({ messages: [{ role: 'user', content: 'w '.repeat(100) }] }), status: 400, code: 'context_length_exceeded', msg: /context/ },
    { name: 'completions without prompt', req: { method: 'POST', path: '/v1/completions', body: '{}' }, status: 400, code: 'missing_field', param: 'prompt' },
    { name: 'completions with token ids', req: { method: 'POST', path: '/v1/completions', body: '{"prompt":[1,2,3]}' }, status: 400, code: 'invalid_type', param: 'prompt' },
    { name: 'model not a string', req: chat({ model: 5, messages: [{ role: 'user', content: 'x' }] }), status: 400, code: 'invalid_type', param: 'model' },
    { name: 'bad %-escape in a model id', req: { method: 'GET', path: '/v1/models/%E0%A4%A' }, status: 400, code: 'invalid_value' },
    { name: 'logprobs on completions a boolean', req: { method: 'POST', path: '/v1/completions', body: '{"prompt":"a","logprobs":true}' }, status: 400, code: 'invalid_type', param: 'logprobs' },
    { name: 'logprobs on completions out of range', req: { method: 'POST', path: '/v1/completions', body: '{"prompt":"a","logprobs":21}' }, status: 400, code: 'invalid_value', param: 'logprobs' },
    { name: 'top_logprobs out of range', req: chat({ messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 21 }), status: 400, code: 'invalid_value', param: 'top_logprobs' },
    { name: 'top_logprobs without logprobs', req: chat({ messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }), status: 400, code: 'invalid_value', param: 'top_logprobs' },
    { name: 'logprobs on chat not a boolean', req: chat({ messages: [{ role: 'user', content: 'x' }], logprobs: 3 }), status: 400, code: 'invalid_type', param: 'logprobs' },
    { name: 'unknown route', req: { method: 'GET', path: '/v1/audio/speech' }, status: 404, code: 'not_found' },
    { name: 'wrong method', req: { method: 'GET', path: '/v1/chat/completions' }, status: 405, code: 'method_not_allowed' },
    { name: 'wrong method on /health', req: { method: 'DELETE', path: '/health' }, status: 405, code: 'method_not_allowed' },
    { name: 'body too large', req: chat({ messages: [{ role: 'user', content: 'x'.repeat(5000) }] }), status: 413, code: 'body_too_large' },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      const r = await fetch(s.url + c.req.path, { method: c.req.method, body: c.req.body, headers: { 'Content-Type': 'application/json' } });
      expect(r.status).toBe(c.status);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      const body = await r.json();
      expect(body.error).toMatchObject({ code: c.code, type: expect.any(String), message: expect.any(String) });
      expect(body.error.message).not.toMatch(/\n|\s at /); // one line, no stack
      if (c.param) expect(body.error.param).toBe(c.param);
      if (c.msg) expect(body.error.message).toMatch(c.msg);
      if (c.status === 405) expect(r.headers.get('allow')).toBeTruthy();
      const h = await fetch(`${s.url}/health`);
      expect(h.status).toBe(200);
    });
  }

  it('a model failure mid-stream ends the stream with an error event', async () => {
    const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ messages: [{ role: 'user', content: 'explode now' }], stream: true }) });
    expect(r.status).toBe(200);
    const events = await readSse(r);
    const last = JSON.parse(events.at(-1)!);
    expect(last.error).toMatchObject({ code: 'model_error', type: 'server_error' });
    expect(last.error.message).toMatch(/device lost/);
    expect(events).not.toContain('[DONE]');
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('a model failure in a non-streamed reply is a 500 JSON error naming the cause', async () => {
    const r = await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ prompt: 'explode', max_tokens: 10 }) });
    expect(r.status).toBe(500);
    expect((await r.json()).error).toMatchObject({ code: 'model_error', message: expect.stringMatching(/GpuError: device lost/) });
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('logs one line per request with method, path, status, tokens and ms', async () => {
    await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ prompt: 'a b', max_tokens: 8 }) });
    await fetch(`${s.url}/nope`);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.logs).toContainEqual(expect.stringMatching(/^POST \/v1\/completions 200 4 tok \d+ ms$/));
    expect(s.logs).toContainEqual(expect.stringMatching(/^GET \/nope 404 0 tok \d+ ms$/));
  });
});

describe('hostile shapes → 4xx, never a 500', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  beforeAll(async () => { s = await startFake({}, { contextLength: 64 }); });
  afterAll(() => s.close());

  // 10k-deep arrays: JSON.parse takes them, JSON.stringify of them throws RangeError.
  const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
  const msgs = '[{"role":"user","content":"x"}]';
  const cases: [path: string, body: string, param: string | null][] = [
    ['/v1/chat/completions', `{"messages":${deep}}`, 'messages[0]'],
    ['/v1/chat/completions', `{"messages":[{"role":"user","content":${deep}}]}`, 'messages[0].content[0]'],
    ['/v1/chat/completions', `{"messages":[{"role":${deep},"content":"x"}]}`, 'messages[0].role'],
    ...['model', 'max_tokens', 'temperature', 'stop', 'stream_options', 'seed', 'logprobs', 'top_logprobs', 'stream'].map(
      (f): [string, string, string] => ['/v1/chat/completions', `{"messages":${msgs},"${f}":${deep}}`, f]),
    ['/v1/completions', `{"prompt":${deep}}`, 'prompt'],
    ['/tokenize', `{"content":${deep}}`, 'content'],
    ['/detokenize', `{"tokens":${deep}}`, 'tokens[0]'],
    ['/apply-template', `{"messages":${deep}}`, 'messages[0]'],
    ['/api/chat', `{"model":"m","messages":${deep}}`, null],
    ['/api/chat', `{"model":${deep},"messages":${msgs}}`, null],
    ['/api/chat', `{"model":"m","messages":${msgs},"options":{"temperature":${deep}}}`, null],
    ['/api/generate', `{"model":"m","prompt":${deep}}`, null],
  ];
  for (const [path, body, param] of cases) {
    it(`${path} ${param ?? body.slice(0, 50)} nested 10k deep → 400`, async () => {
      const r = await fetch(s.url + path, { method: 'POST', headers: JSON_HEADERS, body });
      expect(r.status).toBe(400);
      const e = (await r.json()).error;
      const message = typeof e === 'string' ? e : e.message;
      expect(message).toMatch(/must be|is a|part|required/);
      expect(message.length).toBeLessThan(400);
      if (param) expect(e.param).toBe(param);
    });
  }

  it('answers request targets no URL parser takes with 4xx', async () => {
    for (const target of ['//[', '*', 'http://[']) {
      const { status, body } = await rawRequest(s.url, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      expect(JSON.parse(body).error.message).toEqual(expect.any(String));
    }
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('a bad %-escape in /v1/models/<id> is a 400, a good one any model id', async () => {
    const bad = await fetch(`${s.url}/v1/models/%ZZ%E0`);
    expect(bad.status).toBe(400);
    const ok = await fetch(`${s.url}/v1/models/gpt-4o%2Fmini`);
    expect(ok.status).toBe(200);
    expect((await ok.json()).id).toBe('gpt-4o/mini');
  });
});
