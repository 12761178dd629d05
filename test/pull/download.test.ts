// qllm pull against a local HTTP server on 127.0.0.1: plain download, a connection
// cut midway and resumed with Range, a server that ignores Range, sha256 checks
// (given, or the hub's X-Linked-Etag), and existing files.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/pull.ts';
import { GgufError, UsageError } from '../../src/errors.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { download } from '../../src/pull/download.ts';
import { resolveSource } from '../../src/pull/source.ts';
import { GgmlType } from '../../src/quant/table.ts';
import { qllm } from '../cli/helpers.ts';

/** A valid GGUF of about 300 kB: one F32 tensor of random bits. */
const gguf = (n = 75_000) =>
  Buffer.from(writeGgufToBytes({ kv: [kv.str('general.architecture', 'llama')], tensors: [{ name: 't', dims: [n], type: GgmlType.F32, data: randomBytes(n * 4) }] }));
const DATA = gguf();
const OTHER = gguf(); // the same size: "a new upload of the file"
const SHA = createHash('sha256').update(DATA).digest('hex');

interface Behaviour {
  cutAfter?: number; cutTimes?: number; ignoreRange?: boolean; corrupt?: boolean; linkedEtag?: string;
  /** The file served and its ETag (default DATA, "v1"); noValidators: neither ETag nor Last-Modified. */
  body?: Buffer; etag?: string; noValidators?: boolean;
  /** Answer a Range request with 206 even when If-Range names another version. */
  ignoreIfRange?: boolean;
  /** A captive portal: an HTML page, with its Content-Type or posing as a binary. */
  html?: 'typed' | 'untyped';
  /** Content-Length (and body) cut to this many bytes. */
  shortLength?: number;
  /** Send the first 1000 bytes, then the rest once this resolves. */
  hold?: Promise<void>;
}
let behave: Behaviour = {};
let ranges: (string | undefined)[] = [];
let ifRanges: (string | undefined)[] = [];
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
    ifRanges.push(req.headers['if-range'] as string | undefined);
    if (behave.html) {
      const page = '<!DOCTYPE html><html><body>Log in to the Wi-Fi</body></html>';
      res.writeHead(200, { 'Content-Type': behave.html === 'typed' ? 'text/html; charset=utf-8' : 'application/octet-stream', 'Content-Length': page.length }).end(page);
      return;
    }
    let body = behave.body ?? DATA;
    if (behave.corrupt) { body = Buffer.from(body); body[1234] ^= 0xff; }
    const etag = behave.etag ?? '"v1"';
    const validators: Record<string, string> = behave.noValidators ? {} : { ETag: etag };
    if (behave.shortLength !== undefined) {
      res.writeHead(200, { ...validators, 'Content-Length': behave.shortLength }).end(body.subarray(0, behave.shortLength));
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (m && !behave.ignoreRange && (ifRange === undefined || ifRange === etag || behave.ignoreIfRange)) {
      start = Number(m[1]);
      if (start >= body.length) { res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end(); return; }
      res.writeHead(206, { ...validators, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - start, 'Accept-Ranges': 'bytes' });
    } else {
      res.writeHead(200, { ...validators, 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
    }
    const slice = body.subarray(start);
    if (behave.hold) {
      res.write(slice.subarray(0, 1000));
      void behave.hold.then(() => res.end(slice.subarray(1000)));
      return;
    }
    if (behave.cutAfter !== undefined && (behave.cutTimes ?? 1) > 0) {
      behave.cutTimes = (behave.cutTimes ?? 1) - 1;
      // Send N bytes, then close the connection mid-body. end(), not destroy(): a graceful
      // close delivers every byte written, so the client has exactly N, even on a busy machine.
      res.write(slice.subarray(0, behave.cutAfter), () => res.socket?.end());
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
  ifRanges = [];
  dir = mkdtempSync(join(tmpdir(), 'qllm-pull-'));
});

describe('resolveSource', () => {
  it('maps hf: specs to resolve URLs and takes the file name from the path', () => {
    expect(resolveSource('hf:owner/repo/path/to/file.gguf', 'https://huggingface.co')).toEqual({
      url: 'https://huggingface.co/owner/repo/resolve/main/path/to/file.gguf',
      fileName: 'file.gguf',
      hf: { owner: 'owner', repo: 'repo', revision: 'main', path: 'path/to/file.gguf' },
    });
    expect(resolveSource('hf:Qwen/Qwen2.5-0.5B-GGUF@v1.0/q4 0.gguf', 'https://huggingface.co').url).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B-GGUF/resolve/v1.0/q4%200.gguf');
    expect(resolveSource('https://example.com/a/b%20c.gguf?x=1')).toEqual({ url: 'https://example.com/a/b%20c.gguf?x=1', fileName: 'b c.gguf' });
  });
  it('rejects malformed specs with one-line UsageErrors', () => {
    for (const bad of ['hf:owner/file.gguf', 'hf:owner/repo/../x.gguf', 'hf:owner/repo/dir/', 'hf:../repo/x.gguf', 'hf:owner/repo@../x.gguf', 'ftp://x/y.gguf', 'not a url', 'https://example.com/']) {
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
    await expect(download({ url: `${base}/m.gguf`, dest, retries: 0 })).rejects.toThrow(new RegExp(`interrupted at 100000 of ${DATA.length} bytes.*run the same command again`));
    expect(existsSync(dest)).toBe(false);
    expect(statSync(`${dest}.part`).size).toBe(100_000);
    const r = await download({ url: `${base}/m.gguf`, dest, retries: 0 });
    expect(ranges).toEqual([undefined, 'bytes=100000-']);
    expect(ifRanges).toEqual([undefined, '"v1"']); // only the same version may be continued
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
    behave = { cutAfter: 5000 };
    await expect(download({ url: `${base}/m.gguf`, dest, retries: 0 })).rejects.toThrow(UsageError);
    const have = statSync(`${dest}.part`).size;
    behave = { ignoreRange: true };
    const r = await download({ url: `${base}/m.gguf`, dest });
    expect(ranges).toEqual([undefined, `bytes=${have}-`]);
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

describe('download refuses what it cannot verify (issue 16)', () => {
  const nothingSaved = () => expect(readdirSync(dir).filter((f) => f.startsWith('m.gguf'))).toEqual([]);

  it('refuses an HTML page sent as text/html, before writing anything', async () => {
    behave = { html: 'typed' };
    const dest = join(dir, 'm.gguf');
    await expect(download({ url: `${base}/m.gguf`, dest })).rejects.toThrow(/sent a web page \(Content-Type text\/html\), not a GGUF file: .*check the network/);
    nothingSaved();
  });

  it('refuses a body that does not start with "GGUF", whatever its Content-Type', async () => {
    behave = { html: 'untyped' };
    const dest = join(dir, 'm.gguf');
    const e = await download({ url: `${base}/m.gguf`, dest }).catch((x: Error) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(/is not a GGUF file \(it starts with "<!DOCTYPE html><html>/);
    expect(ranges).toHaveLength(1); // not retried like a cut connection
    nothingSaved();
  });

  it('refuses a body cut short by a wrong Content-Length (exit 1, nothing saved)', async () => {
    behave = { shortLength: DATA.length - 1000 };
    const dest = join(dir, 'm.gguf');
    const e = await download({ url: `${base}/m.gguf`, dest }).catch((x: Error) => x);
    expect(e).toBeInstanceOf(GgufError);
    expect((e as Error).message).toMatch(/runs past the end of GGUF file downloaded from http.*the file is truncated.*nothing was saved/);
    nothingSaved();
  });

  it('a resume against a changed file (other ETag) restarts instead of splicing', async () => {
    const dest = join(dir, 'm.gguf');
    behave = { cutAfter: 100_000 };
    await expect(download({ url: `${base}/m.gguf`, dest, retries: 0 })).rejects.toThrow(/interrupted at/);
    const have = statSync(`${dest}.part`).size;
    behave = { body: OTHER, etag: '"v2"' };
    const logs: string[] = [];
    const r = await download({ url: `${base}/m.gguf`, dest, log: (l) => logs.push(l) });
    expect(ranges).toEqual([undefined, `bytes=${have}-`]);
    expect(ifRanges).toEqual([undefined, '"v1"']);
    expect(r.resumedBytes).toBe(0);
    expect(readFileSync(dest).equals(OTHER)).toBe(true);
    expect(logs.join('\n')).toMatch(/changed since the partial download.*restarting from the beginning/);
  });

  it('a server that ignores If-Range and sends a 206 of the new file: the ETag mismatch restarts it', async () => {
    const dest = join(dir, 'm.gguf');
    behave = { cutAfter: 100_000 };
    await expect(download({ url: `${base}/m.gguf`, dest, retries: 0 })).rejects.toThrow(/interrupted/);
    const have = statSync(`${dest}.part`).size;
    behave = { body: OTHER, etag: '"v2"', ignoreIfRange: true };
    const logs: string[] = [];
    const r = await download({ url: `${base}/m.gguf`, dest, log: (l) => logs.push(l) });
    expect(ranges).toEqual([undefined, `bytes=${have}-`, undefined]);
    expect(r.resumedBytes).toBe(0);
    expect(readFileSync(dest).equals(OTHER)).toBe(true);
    expect(logs[0]).toMatch(/ETag "v1" is now "v2"; starting over/);
  });

  it('without ETag or Last-Modified a partial file is not trusted, unless a sha256 will check the result', async () => {
    const dest = join(dir, 'm.gguf');
    behave = { cutAfter: 100_000, noValidators: true };
    await expect(download({ url: `${base}/m.gguf`, dest, retries: 0 })).rejects.toThrow(/interrupted/);
    behave = { noValidators: true };
    const logs: string[] = [];
    await download({ url: `${base}/m.gguf`, dest, log: (l) => logs.push(l) });
    expect(ranges).toEqual([undefined, undefined]);
    expect(logs[0]).toMatch(/cannot be matched to the server's file \(the server sent no ETag or Last-Modified\); starting over/);
    expect(readFileSync(dest).equals(DATA)).toBe(true);

    const dest2 = join(dir, 'n.gguf');
    ranges = [];
    behave = { cutAfter: 100_000, noValidators: true };
    await expect(download({ url: `${base}/n.gguf`, dest: dest2, retries: 0 })).rejects.toThrow(/interrupted/);
    const have = statSync(`${dest2}.part`).size; // what arrived before the cut
    expect(have).toBeGreaterThan(0);
    behave = { noValidators: true };
    const r = await download({ url: `${base}/n.gguf`, dest: dest2, sha256: SHA });
    expect(ranges).toEqual([undefined, `bytes=${have}-`]);
    expect(r.resumedBytes).toBe(have);
    expect(readFileSync(dest2).equals(DATA)).toBe(true);
  });

  it('a .part left from another URL is not continued', async () => {
    const dest = join(dir, 'm.gguf');
    behave = { cutAfter: 100_000 };
    await expect(download({ url: `${base}/a/m.gguf`, dest, retries: 0 })).rejects.toThrow(/interrupted/);
    behave = {};
    const r = await download({ url: `${base}/b/m.gguf`, dest });
    expect(ranges).toEqual([undefined, undefined]);
    expect(r.resumedBytes).toBe(0);
  });

  it('a second download to the same file at the same time is refused; a lock left by a dead process is taken over', async () => {
    const dest = join(dir, 'm.gguf');
    let release = () => {};
    behave = { hold: new Promise<void>((r) => { release = r; }) };
    let bytes = 0;
    const first = download({ url: `${base}/m.gguf`, dest, onProgress: (d) => { bytes = d; } });
    while (bytes < 1000) await new Promise((r) => setTimeout(r, 5)); // the first one is mid-body
    await expect(download({ url: `${base}/m.gguf`, dest })).rejects.toThrow(/another qllm \(pid \d+\) is downloading .*m\.gguf: wait for it to finish/);
    release();
    expect((await first).status).toBe('downloaded');
    expect(readFileSync(dest).equals(DATA)).toBe(true);
    expect(existsSync(`${dest}.lock`)).toBe(false);

    const dest2 = join(dir, 'n.gguf');
    writeFileSync(`${dest2}.lock`, String(2 ** 22 + 1)); // no such pid (2^22 is Linux's largest pid_max)
    await download({ url: `${base}/n.gguf`, dest: dest2 });
    expect(existsSync(`${dest2}.lock`)).toBe(false);
    expect(readFileSync(dest2).equals(DATA)).toBe(true);
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
  it('the real bin exits 1 with one line for a portal page and for a truncated body, and saves nothing', async () => {
    for (const b of [{ html: 'typed' }, { shortLength: 50_000 }] as Behaviour[]) {
      behave = b;
      const r = await qllm(['pull', `${base}/m.gguf`, '-o', dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^qllm: .*(web page|truncated).*\n$/);
      expect(r.stdout).toBe('');
      expect(readdirSync(dir)).toEqual([]);
    }
  });
});
