// `qllm serve` flags, and SIGTERM draining in a real child process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseServeArgs, run } from '../../src/cli/serve.ts';
import { UsageError } from '../../src/errors.ts';
import { readSse } from './helpers.ts';

describe('qllm serve flags', () => {
  it('parses the options', () => {
    const a = parseServeArgs(['m.gguf', '--port', '0', '-c', '1024', '--queue', '2', '--cors', 'http://localhost:3000'], {});
    expect(a).toMatchObject({ path: 'm.gguf', load: { contextLength: 1024 }, server: { host: '127.0.0.1', port: 0, queue: 2, cors: 'http://localhost:3000' } });
    expect(parseServeArgs(['m.gguf', '--host', '0.0.0.0'], { QLLM_API_KEY: 'k' })).toMatchObject({ server: { apiKey: 'k' } });
    expect(parseServeArgs(['--help'], {})).toBe('help');
  });

  it('refuses bad flags before loading anything', async () => {
    const bad: [string[], RegExp][] = [
      [['m.gguf', '--host', '0.0.0.0'], /--api-key/],
      [['m.gguf', '--port', '70000'], /--port 70000/],
      [['m.gguf', '--queue', '-1'], /--queue/],
      [['m.gguf', '--cors', 'localhost:3000/x'], /--cors/],
      [['m.gguf', '--bogus'], /bogus/],
      [[], /missing <model.gguf>/],
    ];
    for (const [argv, msg] of bad) {
      expect(() => parseServeArgs(argv, {})).toThrow(UsageError);
      expect(() => parseServeArgs(argv, {})).toThrow(msg);
    }
    await expect(run(['m.gguf', '--host', '10.0.0.1'])).rejects.toThrow(/--api-key/);
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
    const first = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: body(400) });
    const queued = fetch(`${url}/v1/chat/completions`, { method: 'POST', body: body(5) });
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
