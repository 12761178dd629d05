// Models by name through the real bin: `qllm info|run hf:…` downloads stories260K
// from a local stand-in for the hub into QLLM_CACHE, runs it from the cache with the
// hub unreachable, fails in one line for an uncached model offline; `qllm ls`, `qllm rm`.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, sharedModel } from '../shared.ts';
import { qllm } from './helpers.ts';

const cache = mkdtempSync(join(tmpdir(), 'qllm-hf-cache-'));
const DOWN = 'http://127.0.0.1:1'; // nothing listens there: "the network is down"
let hub = '';
let server: http.Server | undefined;
let requests = 0;

describe.skipIf(!hasShared)('qllm <command> hf:owner/repo/file.gguf', () => {
  const model = hasShared ? readFileSync(sharedModel('stories260K.gguf')) : Buffer.alloc(0);
  const cached = join(cache, 'hf', 'o', 'r', 'main', 'stories260K.gguf');
  const env = (endpoint: string) => ({ HF_ENDPOINT: endpoint, QLLM_CACHE: cache });

  beforeAll(async () => {
    const sha = createHash('sha256').update(model).digest('hex');
    server = http.createServer((req, res) => {
      requests++;
      if (req.url === '/o/r/resolve/main/stories260K.gguf') res.writeHead(302, { Location: '/cdn/s.gguf', 'X-Linked-Etag': `"${sha}"` }).end();
      else if (req.url === '/cdn/s.gguf') res.writeHead(200, { 'Content-Length': model.length, ETag: `"${sha}"` }).end(model);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    rmSync(cache, { recursive: true, force: true });
  });

  it('info downloads into QLLM_CACHE (hub sha256 verified) and describes the model', async () => {
    const r = await qllm(['info', 'hf:o/r/stories260K.gguf', '--json'], env(hub));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ architecture: 'llama', vocab_size: 512 });
    expect(r.stderr).toMatch(/qllm: downloading hf:o\/r\/stories260K\.gguf into /);
    expect(r.stderr).toMatch(/sha256 [0-9a-f]{64} verified \(hub\)/);
    expect(readFileSync(cached).equals(model)).toBe(true);
  });

  it('run works from the cache with the hub unreachable', async () => {
    const before = requests;
    const r = await qllm(['run', 'hf:o/r/stories260K.gguf', '-p', 'Once upon a time', '-n', '6', '--temp', '0'], env(DOWN));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^, there was a little/);
    expect(r.stderr).not.toMatch(/downloading/);
    expect(requests).toBe(before);
  });

  it('an uncached model with the hub unreachable fails with one line naming the network problem', async () => {
    const r = await qllm(['info', 'hf:o/r/other.gguf'], env(DOWN));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^qllm: downloading hf:o\/r\/other\.gguf into .*\nqllm: cannot get hf:o\/r\/other\.gguf \(it is not in the cache .*\): cannot reach http:\/\/127\.0\.0\.1:1\/.*ECONNREFUSED.*\n$/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('ls lists the cached model with its size; rm removes it; a second rm is one line', async () => {
    const ls = await qllm(['ls'], env(DOWN));
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+SIZE\nhf:o\/r\/stories260K\.gguf\s+1\.13 MiB\n$/);
    const json = await qllm(['ls', '--json'], env(DOWN));
    expect(JSON.parse(json.stdout)).toEqual([{ name: 'hf:o/r/stories260K.gguf', path: cached, bytes: model.length, partial: false }]);

    const rm = await qllm(['rm', 'hf:o/r/stories260K.gguf'], env(DOWN));
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stderr).toBe('qllm: removed hf:o/r/stories260K.gguf (1.13 MiB)\n');
    expect(existsSync(cached)).toBe(false);
    expect((await qllm(['ls'], env(DOWN))).stderr).toMatch(/^qllm: no models in the cache /);

    const again = await qllm(['rm', 'hf:o/r/stories260K.gguf'], env(DOWN));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^qllm: hf:o\/r\/stories260K\.gguf is not in the cache .*'qllm ls' lists the cached models\n$/);
  });
});
