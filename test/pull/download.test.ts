// qllm pull against a local HTTP server on 127.0.0.1: plain download, a connection
// cut midway and resumed with Range, a server that ignores Range, sha256 checks
// (given, or the hub's X-Linked-Etag), and existing files.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/pull.ts';
import { GgufError, UsageError } from '../../src/errors.ts';
import { download } from '../../src/pull/download.ts';
import { resolveSource } from '../../src/pull/source.ts';

const DATA = randomBytes(300_000);
const SHA = createHash('sha256').update(DATA).digest('hex');

interface Behaviour { cutAfter?: number; cutTimes?: number; ignoreRange?: boolean; corrupt?: boolean; linkedEtag?: string }
let behave: Behaviour = {};
let ranges: (string | undefined)[] = [];
let base = '';
let server: http.Server;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/missing.gguf') { res.writeHead(404).end('no'); return; }
    if (req.url === '/hub/model.gguf') {
      // Like huggingface.co/…/resolve/…: a redirect that carries the LFS sha256.
      res.writeHead(302, { Location: '/cdn/model.gguf', 'X-Linked-Etag': `"${behave.linkedEtag ?? SHA}"`, 'X-Linked-Size': String(DATA.length) }).end();
      return;
    }
    ranges.push(req.headers.range);
    let body = DATA;
    if (behave.corrupt) { body = Buffer.from(DATA); body[1234] ^= 0xff; }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !behave.ignoreRange) {
      start = Number(m[1]);
      if (start >= body.length) { res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end(); return; }
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - start, 'Accept-Ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
    }
    const slice = body.subarray(start);
    if (behave.cutAfter !== undefined && (behave.cutTimes ?? 1) > 0) {
      behave.cutTimes = (behave.cutTimes ?? 1) - 1;
      // Send N bytes, then drop the connection mid-body.
      res.write(slice.subarray(0, behave.cutAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let dir = '';
beforeEach(() => {
  behave = {};
  ranges = [];
  dir = mkdtempSync(join(tmpdir(), 'qllm-pull-'));
});

describe('resolveSource', () => {
  it('maps hf: specs to resolve URLs and takes the file name from the path', () => {
    expect(resolveSource('hf:owner/repo/path/to/file.gguf', 'https://huggingface.co')).toEqual({ url: 'https://huggingface.co/owner/repo/resolve/main/path/to/file.gguf', fileName: 'file.gguf' });
    expect(resolveSource('hf:Qwen/Qwen2.5-0.5B-GGUF@v1.0/q4 0.gguf', 'https://huggingface.co').url).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B-GGUF/resolve/v1.0/q4%200.gguf');
    expect(resolveSource('https://example.com/a/b%20c.gguf?x=1')).toEqual({ url: 'https://example.com/a/b%20c.gguf?x=1', fileName: 'b c.gguf' });
  });
  it('rejects malformed specs with one-line UsageErrors', () => {
    for (const bad of ['hf:owner/file.gguf', 'hf:owner/repo/../x.gguf', 'hf:owner/repo/dir/', 'ftp://x/y.gguf', 'not a url', 'https://example.com/']) {
      expect(() => resolveSource(bad)).toThrow(UsageError);
    }
  });
});

describe('download', () => {
  it('downloads a file byte-identical, with no .part left behind', async () => {
    const seen: number[] = [];
    const r = await download({ url: `${base}/m.gguf`, dest: join(dir, 'm.gguf'), onProgress: (d) => seen.push(d) });
    expect(readFileSync(r.path).equals(DATA)).toBe(true);
    expect(r).toMatchObject({ status: 'downloaded', bytes: DATA.length, sha256: SHA, verifiedBy: 'none' });
    expect(existsSync(join(dir, 'm.gguf.part'))).toBe(false);
    expect(seen.at(-1)).toBe(DATA.length);
  });

  it('keeps the .part when cut midway, then resumes with a Range request', async () => {
    behave = { cutAfter: 100_000 };
    const dest = join(dir, 'm.gguf');
    await expect(download({ url: `${base}/m.gguf`, dest, retries: 0 })).rejects.toThrow(/interrupted at 100000 of 300000 bytes.*run the same command again/);
    expect(existsSync(dest)).toBe(false);
    expect(statSync(`${dest}.part`).size).toBe(100_000);
    const r = await download({ url: `${base}/m.gguf`, dest, retries: 0 });
    expect(ranges).toEqual([undefined, 'bytes=100000-']);
    expect(r.resumedBytes).toBe(100_000);
    expect(readFileSync(dest).equals(DATA)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('resumes by itself after dropped connections', async () => {
    behave = { cutAfter: 70_000, cutTimes: 2 };
    const logs: string[] = [];
    const r = await download({ url: `${base}/m.gguf`, dest: join(dir, 'm.gguf'), log: (l) => logs.push(l) });
    expect(ranges).toEqual([undefined, 'bytes=70000-', 'bytes=140000-']);
    expect(readFileSync(r.path).equals(DATA)).toBe(true);
    expect(logs.filter((l) => l.startsWith('connection lost'))).toHaveLength(2);
  });

  it('restarts cleanly when the server ignores Range (200)', async () => {
    const dest = join(dir, 'm.gguf');
    writeFileSync(`${dest}.part`, DATA.subarray(0, 5000));
    behave = { ignoreRange: true };
    const r = await download({ url: `${base}/m.gguf`, dest });
    expect(ranges).toEqual(['bytes=5000-']);
    expect(r.resumedBytes).toBe(0);
    expect(readFileSync(dest).equals(DATA)).toBe(true);
  });

  it('treats a complete .part (416) as done', async () => {
    const dest = join(dir, 'm.gguf');
    writeFileSync(`${dest}.part`, DATA);
    const r = await download({ url: `${base}/m.gguf`, dest, sha256: SHA });
    expect(r.status).toBe('downloaded');
    expect(readFileSync(dest).equals(DATA)).toBe(true);
  });

  it("verifies against the hub's X-Linked-Etag across a redirect", async () => {
    const r = await download({ url: `${base}/hub/model.gguf`, dest: join(dir, 'model.gguf') });
    expect(r).toMatchObject({ verifiedBy: 'hub', sha256: SHA });
  });

  it('a corrupted byte fails the checksum and leaves no file under the final name', async () => {
    behave = { corrupt: true };
    const dest = join(dir, 'model.gguf');
    await expect(download({ url: `${base}/hub/model.gguf`, dest })).rejects.toThrow(GgufError);
    await expect(download({ url: `${base}/hub/model.gguf`, dest })).rejects.toThrow(new RegExp(`expected ${SHA}`));
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
    behave = {};
    await expect(download({ url: `${base}/m.gguf`, dest: join(dir, 'm.gguf'), sha256: '0'.repeat(64) })).rejects.toThrow(/sha256 of the download is/);
    expect(existsSync(join(dir, 'm.gguf'))).toBe(false);
  });

  it('an identical existing file is a no-op; a different one is refused', async () => {
    const dest = join(dir, 'm.gguf');
    writeFileSync(dest, DATA);
    expect(await download({ url: `${base}/m.gguf`, dest, sha256: SHA })).toMatchObject({ status: 'present' });
    expect(ranges).toEqual([]); // known sha256: no request at all
    expect(await download({ url: `${base}/m.gguf`, dest })).toMatchObject({ status: 'present' });
    expect(existsSync(`${dest}.part`)).toBe(false);
    writeFileSync(dest, Buffer.concat([DATA.subarray(0, 10), Buffer.from('different')]));
    await expect(download({ url: `${base}/m.gguf`, dest })).rejects.toThrow(/already exists and differs/);
    await expect(download({ url: `${base}/m.gguf`, dest, sha256: SHA })).rejects.toThrow(UsageError);
    const same = Buffer.from(DATA);
    same[0] ^= 1;
    writeFileSync(dest, same); // same size, other bytes
    await expect(download({ url: `${base}/m.gguf`, dest })).rejects.toThrow(/already exists and differs/);
    expect(readFileSync(dest).equals(same)).toBe(true);
  });

  it('names the HTTP status of a failed request', async () => {
    await expect(download({ url: `${base}/missing.gguf`, dest: join(dir, 'x.gguf') })).rejects.toThrow(/HTTP 404 \(not found/);
    await expect(download({ url: 'http://127.0.0.1:1/x.gguf', dest: join(dir, 'x.gguf') })).rejects.toThrow(/cannot reach/);
  });
});

describe('qllm pull (CLI)', () => {
  it('saves into -o DIR and prints the path', async () => {
    const out: string[] = [];
    const log = console.log;
    console.log = (s: string) => out.push(s);
    try {
      await run([`${base}/m.gguf`, '-o', join(dir, 'models'), '--sha256', SHA.toUpperCase()]);
    } finally {
      console.log = log;
    }
    expect(out).toEqual([join(dir, 'models', 'm.gguf')]);
    expect(readFileSync(out[0]).equals(DATA)).toBe(true);
  });
  it('rejects a malformed --sha256 and extra arguments', async () => {
    await expect(run([`${base}/m.gguf`, '--sha256', 'abc'])).rejects.toThrow(/--sha256 abc is not 64 hex digits/);
    await expect(run([`${base}/m.gguf`, 'extra'])).rejects.toThrow(UsageError);
  });
});
