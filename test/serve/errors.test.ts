// Every bad request gets an OpenAI-style JSON error with the right status, and
// the server keeps answering (/health right after each one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startFake } from './helpers.ts';

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
    { name: 'bad role', req: chat({ messages: [{ role: 'tool', content: 'x' }] }), status: 400, code: 'invalid_value', param: 'messages[0].role' },
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
    { name: 'unknown model', req: chat({ model: 'gpt-4', messages: [{ role: 'user', content: 'x' }] }), status: 404, code: 'model_not_found', param: 'model' },
    { name: 'unknown model by id', req: { method: 'GET', path: '/v1/models/gpt-4' }, status: 404, code: 'model_not_found' },
    { name: 'unknown route', req: { method: 'GET', path: '/v1/embeddings' }, status: 404, code: 'not_found' },
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
    const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'explode now' }], stream: true }) });
    expect(r.status).toBe(200);
    const events = await readSse(r);
    const last = JSON.parse(events.at(-1)!);
    expect(last.error).toMatchObject({ code: 'model_error', type: 'server_error' });
    expect(last.error.message).toMatch(/device lost/);
    expect(events).not.toContain('[DONE]');
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('a model failure in a non-streamed reply is a 500 JSON error naming the cause', async () => {
    const r = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'explode', max_tokens: 10 }) });
    expect(r.status).toBe(500);
    expect((await r.json()).error).toMatchObject({ code: 'model_error', message: expect.stringMatching(/GpuError: device lost/) });
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('logs one line per request with method, path, status, tokens and ms', async () => {
    await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'a b', max_tokens: 8 }) });
    await fetch(`${s.url}/nope`);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.logs).toContainEqual(expect.stringMatching(/^POST \/v1\/completions 200 4 tok \d+ ms$/));
    expect(s.logs).toContainEqual(expect.stringMatching(/^GET \/nope 404 0 tok \d+ ms$/));
  });
});
