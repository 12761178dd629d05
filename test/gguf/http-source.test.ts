// urlByteSource (a GGUF read over HTTP Range requests, for the browser build)
// against serve/files.ts's sendFile: bounded requests, the whole file never
// fetched, a replaced file detected by If-Range, and servers that ignore
// Range or cut the body refused in one line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { urlByteSource } from '../../src/gguf/http-source.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { parseRange, sendFile } from '../../src/serve/files.ts';
import { hasShared, sharedModel } from '../shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-http-'));
const big = join(dir, 'big.bin');
// 9 MiB + 3 of a byte pattern whose every offset is checkable: byte i = (i * 7 + (i >> 12)) & 255.
const SIZE = (9 << 20) + 3;
const pattern = new Uint8Array(SIZE).map((_, i) => (i * 7 + (i >> 12)) & 255);
writeFileSync(big, pattern);

let server: Server;
let base = '';
let requests: { range?: string; ifRange?: string }[] = [];
let handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    void handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('parseRange', () => {
  it('reads the three single-range forms and refuses the unsatisfiable', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=95-200', 100)).toEqual({ start: 95, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBeNull();
    expect(parseRange('bytes=5-4', 100)).toBeNull();
    expect(parseRange('bytes=-0', 100)).toBeNull();
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
  });
});

describe('urlByteSource over sendFile', () => {
  it('reads exact bytes anywhere, in bounded Range requests, never the whole file', async () => {
    handler = (req, res) => sendFile(req, res, big, 'application/octet-stream').then(() => {});
    requests = [];
    const src = await urlByteSource(`${base}/big.bin`);
    expect(src.size).toBe(SIZE);
    for (const [off, len] of [
      [0, 16],
      [5, 1000],
      [(4 << 20) - 3, 10], // straddles the first window's end
      [SIZE - 7, 7],
      [1 << 20, 6 << 20], // larger than a window: its own request
      [123, 0],
    ]) {
      expect(Array.from(await src.read(off, len))).toEqual(Array.from(pattern.subarray(off, off + len)));
    }
    await expect(src.read(SIZE - 2, 5)).rejects.toThrow(/runs past the end/);
    expect(requests.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? ''))).toBe(true);
    const lengths = requests.map((r) => {
      const [a, b] = (r.range as string).slice(6).split('-').map(Number);
      return b - a + 1;
    });
    expect(Math.max(...lengths)).toBeLessThan(SIZE);
    // Small reads inside the window cost no request: 6 reads, 4 requests.
    expect(requests.map((r) => r.range)).toEqual(['bytes=0-4194303', 'bytes=4194301-8388604', 'bytes=9437180-9437186', 'bytes=1048576-7340031']);
    // After the first answer every request carries its ETag.
    expect(requests.slice(1).every((r) => r.ifRange?.startsWith('"'))).toBe(true);
    await src.close();
    await expect(src.read(0, 1)).rejects.toThrow(/after it was closed/);
  });

  it('retries a request whose connection drops, then gives up in one line', async () => {
    let drops = 1;
    handler = (req, res) => {
      if (drops-- > 0) return void req.socket.destroy();
      return sendFile(req, res, big, 'application/octet-stream').then(() => {});
    };
    expect((await urlByteSource(`${base}/big.bin`)).size).toBe(SIZE);
    drops = 100;
    await expect(urlByteSource(`${base}/big.bin`, { label: 'big.bin' })).rejects.toThrow(/^cannot fetch big\.bin: fetch failed/);
  });

  it('fails in one line when the file changes on the server mid-load', async () => {
    const f = join(dir, 'changing.bin');
    writeFileSync(f, pattern.subarray(0, 6 << 20));
    handler = (req, res) => sendFile(req, res, f, 'application/octet-stream').then(() => {});
    const src = await urlByteSource(`${base}/changing.bin`);
    writeFileSync(f, pattern.subarray(1, (6 << 20) + 1)); // same size, new mtime → new ETag
    const later = new Date(Date.now() + 5000);
    (await import('node:fs')).utimesSync(f, later, later);
    await expect(src.read(5 << 20, 16)).rejects.toThrow(/changed on the server while it was loading/);
  });

  it('refuses a server that ignores Range, a 404 and a cut body, each in one line', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Length': 10 });
      res.end('0123456789');
    };
    await expect(urlByteSource(`${base}/x.gguf`)).rejects.toThrow(/ignores HTTP Range requests/);
    handler = (_req, res) => {
      res.writeHead(404);
      res.end();
    };
    await expect(urlByteSource(`${base}/x.gguf`, { label: 'x.gguf' })).rejects.toThrow(/^cannot fetch x\.gguf: HTTP 404/);
    handler = (_req, res) => {
      res.writeHead(206, { 'Content-Range': 'bytes 0-99/100', 'Content-Length': 100 });
      res.write('short');
      res.destroy();
    };
    const e = await urlByteSource(`${base}/x.gguf`).catch((err: Error) => err);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).not.toContain('\n');
  });

  it.skipIf(!hasShared)('feeds the GGUF parser: a real model header over HTTP', async () => {
    handler = (req, res) => sendFile(req, res, sharedModel('stories260K.gguf'), 'application/octet-stream').then(() => {});
    const file = await openGguf(await urlByteSource(`${base}/stories260K.gguf`), 'stories260K.gguf');
    expect(file.tensors.length).toBeGreaterThan(40);
    expect(file.kv.get('general.architecture')?.value).toBe('llama');
    const t = file.tensors[0];
    expect((await file.readTensor(t)).byteLength).toBeGreaterThan(0);
    await file.close();
  });
});
