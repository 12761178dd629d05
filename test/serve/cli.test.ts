// `qllm serve` flags, and SIGTERM draining in a real child process.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Model } from '../../src/api.ts';
import { parseServeArgs, run } from '../../src/cli/serve.ts';
import { UsageError } from '../../src/errors.ts';
import { FakeModel } from './fake-model.ts';
import { readSse } from './helpers.ts';

describe('qllm serve flags', () => {
  it('parses the options', () => {
    const a = parseServeArgs(['m.gguf', '--port', '0', '-c', '1024', '--queue', '2', '--cors', 'http://localhost:3000'], {});
    expect(a).toMatchObject({ path: 'm.gguf', load: { contextLength: 1024 }, server: { host: '127.0.0.1', port: 0, queue: 2, cors: 'http://localhost:3000' } });
    expect(parseServeArgs(['m.gguf', '--host', '0.0.0.0'], { QLLM_API_KEY: 'k' })).toMatchObject({ server: { apiKey: 'k' } });
    expect(parseServeArgs(['--help'], {})).toBe('help');
    expect(parseServeArgs(['m.gguf'], {})).toMatchObject({ server: { metrics: true, modelPath: 'm.gguf' } });
    expect(parseServeArgs(['m.gguf', '--metrics'], {})).toMatchObject({ server: { metrics: true } });
    expect(parseServeArgs(['m.gguf', '--no-metrics'], {})).toMatchObject({ server: { metrics: false } });
    expect(parseServeArgs(['m.gguf', '--reasoning-format', 'none'], {})).toMatchObject({ server: { reasoningFormat: 'none' } });
    expect((parseServeArgs(['m.gguf'], {}) as { server: object }).server).not.toHaveProperty('reasoningFormat'); // the server's default: auto
    // Context shift is off unless asked for, as in llama-server (--no-context-shift is accepted for its command lines).
    expect(parseServeArgs(['m.gguf'], {})).toMatchObject({ server: { contextShift: false } });
    expect(parseServeArgs(['m.gguf', '--context-shift'], {})).toMatchObject({ server: { contextShift: true } });
    expect(parseServeArgs(['m.gguf', '--no-context-shift'], {})).toMatchObject({ server: { contextShift: false } });
  });

  it('refuses bad flags before loading anything', async () => {
    const bad: [string[], RegExp][] = [
      [['m.gguf', '--host', '0.0.0.0'], /--api-key/],
      [['m.gguf', '--port', '70000'], /--port 70000/],
      [['m.gguf', '--queue', '-1'], /--queue/],
      [['m.gguf', '--cors', 'localhost:3000/x'], /--cors/],
      [['m.gguf', '--bogus'], /bogus/],
      [['m.gguf', '--metrics', '--no-metrics'], /contradict/],
      [['m.gguf', '--context-shift', '--no-context-shift'], /contradict/],
      [['m.gguf', '--reasoning-format', 'hidden'], /--reasoning-format hidden is not one of none, auto, deepseek, deepseek-legacy/],
      [[], /missing <model.gguf>/],
    ];
    for (const [argv, msg] of bad) {
      expect(() => parseServeArgs(argv, {})).toThrow(UsageError);
      expect(() => parseServeArgs(argv, {})).toThrow(msg);
    }
    await expect(run(['m.gguf', '--host', '10.0.0.1'])).rejects.toThrow(/--api-key/);
  });

  it('finds a busy port before loading the model', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    let loads = 0;
    try {
      const loadModel = async () => { loads++; return new FakeModel() as Model; };
      await expect(run(['m.gguf', '--port', String(port)], { loadModel, log: () => {} })).rejects.toThrow(new RegExp(`port ${port} .* already in use`));
      expect(loads).toBe(0);
    } finally {
      busy.close();
    }
  });

  it('listens while the model loads: 503 "loading" until it is there; a failed load closes the port', async () => {
    let finishLoad!: (m: Model) => void;
    let url = '';
    const logs: string[] = [];
    const log = (l: string) => { logs.push(l); url ||= /listening on (http:\/\/\S+)/.exec(l)?.[1] ?? ''; };
    const loading = new Promise<Model>((r) => { finishLoad = r; });
    const served = run(['m.gguf', '--port', '0'], { loadModel: () => loading, log });
    while (!url) await new Promise((r) => setTimeout(r, 5));
    const h = await fetch(`${url}/health`);
    expect(h.status).toBe(503);
    expect(await h.json()).toEqual({ status: 'loading' });
    const m = await fetch(`${url}/v1/models`);
    expect(m.status).toBe(503);
    expect((await m.json()).error.code).toBe('loading');
    finishLoad(new FakeModel());
    for (let i = 0; i < 200 && (await fetch(`${url}/health`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 5));
    expect((await (await fetch(`${url}/v1/models`)).json()).data[0].id).toBe('m');
    process.emit('SIGTERM', 'SIGTERM');
    await served;
    expect(logs.at(-1)).toMatch(/stopped/);

    let failedUrl = '';
    const failing = run(['m.gguf', '--port', '0'], { loadModel: async () => { throw new UsageError('no such file: m.gguf'); }, log: (l) => { failedUrl ||= /listening on (http:\/\/\S+)/.exec(l)?.[1] ?? ''; } });
    await expect(failing).rejects.toThrow(/no such file/);
    expect(failedUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await expect(fetch(`${failedUrl}/health`)).rejects.toThrow();
  });
});

describe('qllm serve signals', () => {
  it('on SIGTERM finishes or cancels the stream in flight, rejects queued requests, then exits 0', async () => {
    const script = fileURLToPath(new URL('./fixtures/serve-fake.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DRAIN_MS: '100' } });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
        if (m) resolve(m[1]);
      });
      child.on('exit', (c) => reject(new Error(`child exited ${c}: ${err}`)));
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const body = (n: number) => JSON.stringify({ messages: [{ role: 'user', content: 'forever' }], max_tokens: n, stream: true });
    const headers = { 'Content-Type': 'application/json' };
    const first = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: body(400) });
    const queued = fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: body(5) });
    for (let i = 0; i < 200; i++) {
      const st = await (await fetch(`${url}/v1/qllm/stats`)).json();
      if (st.queue.waiting === 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGTERM');
    expect((await queued).status).toBe(503);
    const events = await readSse(first);
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.length).toBeLessThan(400);
    expect(await exited).toBe(0);
    expect(err).toMatch(/SIGTERM, draining/);
    expect(err).toMatch(/stopped/);
  });
});
