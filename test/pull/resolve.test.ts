// Models by name: hf: specs resolve into the cache (downloading once, from a local
// stand-in for the hub), work offline afterwards, and list/remove by name.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { cachePath, cacheRoot, findCached, listCached, removeCached, resolveModelArg } from '../../src/pull/resolve.ts';
import { GgmlType } from '../../src/quant/table.ts';

const MODEL = Buffer.from(writeGgufToBytes({ kv: [kv.str('general.architecture', 'llama')], tensors: [{ name: 't', dims: [1024], type: GgmlType.F32, data: randomBytes(4096) }] }));
const SHA = createHash('sha256').update(MODEL).digest('hex');

let requests: string[] = [];
let server: http.Server;
let hub = '';
const savedEndpoint = process.env.HF_ENDPOINT;

beforeAll(async () => {
  // Like huggingface.co: /owner/repo/resolve/<rev>/<path> redirects to a CDN, with the LFS sha256.
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (/^\/o\/r\/resolve\/(main|v1\.0)\/(sub\/)?m\.gguf$/.test(req.url ?? '')) {
      res.writeHead(302, { Location: '/cdn/m.gguf', 'X-Linked-Etag': `"${SHA}"` }).end();
      return;
    }
    if (req.url === '/cdn/m.gguf') {
      res.writeHead(200, { 'Content-Length': MODEL.length, ETag: '"v1"' }).end(MODEL);
      return;
    }
    res.writeHead(404).end('Entry not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.HF_ENDPOINT = hub;
});
afterAll(() => {
  if (savedEndpoint === undefined) delete process.env.HF_ENDPOINT;
  else process.env.HF_ENDPOINT = savedEndpoint;
  return new Promise<void>((r) => server.close(() => r()));
});

let cache = '';
beforeEach(() => {
  requests = [];
  cache = mkdtempSync(join(tmpdir(), 'qllm-cache-'));
});

describe('cacheRoot', () => {
  it('QLLM_CACHE, else $XDG_CACHE_HOME/qllm, else ~/.cache/qllm (a relative XDG_CACHE_HOME is ignored)', () => {
    expect(cacheRoot({ QLLM_CACHE: '/a/b', XDG_CACHE_HOME: '/x' })).toBe('/a/b');
    expect(cacheRoot({ XDG_CACHE_HOME: '/x' })).toBe('/x/qllm');
    expect(cacheRoot({ XDG_CACHE_HOME: 'rel' })).toBe(join(homedir(), '.cache', 'qllm'));
    expect(cacheRoot({})).toBe(join(homedir(), '.cache', 'qllm'));
  });
});

describe('resolveModelArg', () => {
  it('passes plain paths through unchanged, without touching them', async () => {
    for (const p of ['model.gguf', '/no/such/dir/x.gguf', './hf:odd.gguf']) expect(await resolveModelArg(p, { cacheDir: cache })).toBe(p);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('downloads an hf: spec into the cache once (hub sha256 verified), then answers from the cache without a request', async () => {
    const p = await resolveModelArg('hf:o/r/m.gguf', { cacheDir: cache, quiet: true });
    expect(p).toBe(join(cache, 'hf', 'o', 'r', 'main', 'm.gguf'));
    expect(readFileSync(p).equals(MODEL)).toBe(true);
    expect(requests).toEqual(['/o/r/resolve/main/m.gguf', '/cdn/m.gguf']);
    expect(readdirSync(join(cache, 'hf', 'o', 'r', 'main'))).toEqual(['m.gguf']); // no .part, .lock or .json left
    requests = [];
    expect(await resolveModelArg('hf:o/r/m.gguf', { cacheDir: cache, quiet: true })).toBe(p);
    expect(requests).toEqual([]);
  });

  it('keeps revisions and subdirectories apart', async () => {
    const p = await resolveModelArg('hf:o/r@v1.0/sub/m.gguf', { cacheDir: cache, quiet: true });
    expect(p).toBe(join(cache, 'hf', 'o', 'r', 'v1.0', 'sub', 'm.gguf'));
    expect(cachePath(cache, { owner: 'o', repo: 'r', revision: 'refs/pr/1', path: 'm.gguf' })).toBe(join(cache, 'hf', 'o', 'r', 'refs%2Fpr%2F1', 'm.gguf'));
  });

  it('an uncached model with the network down fails with one line naming the network problem', async () => {
    process.env.HF_ENDPOINT = 'http://127.0.0.1:1';
    try {
      const e = await resolveModelArg('hf:o/r/m.gguf', { cacheDir: cache, quiet: true }).catch((x: Error) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).toMatch(/^cannot get hf:o\/r\/m\.gguf \(it is not in the cache .*\): cannot reach http:\/\/127\.0\.0\.1:1\/o\/r\/resolve\/main\/m\.gguf: .*ECONNREFUSED.*check the network/);
      expect((e as Error).message).not.toMatch(/\n/);
    } finally {
      process.env.HF_ENDPOINT = hub;
    }
    expect(existsSync(join(cache, 'hf', 'o', 'r', 'main', 'm.gguf'))).toBe(false);
  });

  it('names a file the hub does not have, and refuses malformed or escaping specs', async () => {
    await expect(resolveModelArg('hf:o/r/missing.gguf', { cacheDir: cache, quiet: true })).rejects.toThrow(/^cannot get hf:o\/r\/missing\.gguf .*HTTP 404 \(not found/);
    for (const bad of ['hf:o/r', 'hf:../r/m.gguf', 'hf:o/../m.gguf', 'hf:o/r@../m.gguf', 'hf:o/r/a/../../m.gguf']) {
      await expect(resolveModelArg(bad, { cacheDir: cache, quiet: true })).rejects.toThrow(UsageError);
    }
    expect(existsSync(join(cache, 'hf', 'o'))).toBe(false); // no empty directories left behind
    expect(existsSync(join(cache, '..', 'r'))).toBe(false);
  });
});

describe('listCached / removeCached', () => {
  it('lists models by name with sizes, marks partial downloads, removes by name with or without hf:', async () => {
    await resolveModelArg('hf:o/r/m.gguf', { cacheDir: cache, quiet: true });
    await resolveModelArg('hf:o/r@v1.0/sub/m.gguf', { cacheDir: cache, quiet: true });
    const part = cachePath(cache, { owner: 'x', repo: 'y', revision: 'main', path: 'big.gguf' });
    mkdirSync(join(part, '..'), { recursive: true });
    writeFileSync(`${part}.part`, Buffer.alloc(1000));
    writeFileSync(`${part}.part.json`, '{}');
    expect(await listCached(cache)).toEqual([
      { name: 'hf:o/r/m.gguf', path: join(cache, 'hf', 'o', 'r', 'main', 'm.gguf'), bytes: MODEL.length, partial: false },
      { name: 'hf:o/r@v1.0/sub/m.gguf', path: join(cache, 'hf', 'o', 'r', 'v1.0', 'sub', 'm.gguf'), bytes: MODEL.length, partial: false },
      { name: 'hf:x/y/big.gguf', path: part, bytes: 1000, partial: true },
    ]);

    expect(await removeCached('o/r@v1.0/sub/m.gguf', cache)).toBe(MODEL.length);
    expect(existsSync(join(cache, 'hf', 'o', 'r', 'v1.0'))).toBe(false); // empty directories pruned
    expect(await removeCached('hf:x/y/big.gguf', cache)).toBe(1000);
    expect(existsSync(join(cache, 'hf', 'x'))).toBe(false);
    expect((await listCached(cache)).map((m) => m.name)).toEqual(['hf:o/r/m.gguf']);
    await expect(findCached('hf:o/r/nope.gguf', cache)).rejects.toThrow(/^hf:o\/r\/nope\.gguf is not in the cache .*: 'qllm ls' lists the cached models$/);
  });

  it('an empty or missing cache lists nothing', async () => {
    expect(await listCached(join(cache, 'none'))).toEqual([]);
  });
});
