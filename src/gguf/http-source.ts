// A ByteSource over HTTP: a GGUF on a web server read with Range requests, so
// that a browser page streams weights into GPU buffers without ever holding
// the whole file (the upload reads tensors in bounded chunks; see
// gpu/weights.ts). Small reads (the metadata parser asks for a few bytes at a
// time) are served from one read-ahead window, so the header costs a handful
// of requests rather than thousands.
import { GgufError } from '../errors.ts';
import type { ByteSource } from './types.ts';

/** Bytes fetched at least per request: metadata reads come from this window. */
const WINDOW = 4 << 20;

type Fetch = typeof fetch;

/** Parses `Content-Range: bytes a-b/total` (total may be '*'). */
function totalOf(contentRange: string | null): number | undefined {
  const m = /^bytes\s+\d+-\d+\/(\d+)$/i.exec(contentRange?.trim() ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * Opens `url` for random access. The server must answer Range requests with
 * 206 (any static file server and `qllm serve`'s /model.gguf do). An ETag or
 * Last-Modified from the first answer is sent back as If-Range, so a file that
 * changes on the server mid-load fails instead of splicing two files.
 */
export async function urlByteSource(url: string, opts: { fetch?: Fetch; label?: string; headers?: Record<string, string> } = {}): Promise<ByteSource> {
  const get = opts.fetch ?? globalThis.fetch;
  const label = opts.label ?? url;
  let validator: string | undefined;
  let size = 0;

  async function range(start: number, end: number): Promise<Uint8Array> {
    const headers: Record<string, string> = { ...opts.headers, Range: `bytes=${start}-${end - 1}` };
    if (validator) headers['If-Range'] = validator;
    let res: Response | undefined;
    // A GET is idempotent: retry a failed request twice. A kept-alive socket
    // that the server closes just as it is reused fails once with ECONNRESET.
    for (let attempt = 0; !res; attempt++) {
      try {
        res = await get(url, { headers });
      } catch (e) {
        if (attempt < 2) continue;
        const cause = (e as { cause?: { message?: string } }).cause?.message;
        throw new GgufError(`cannot fetch ${label}: ${(e as Error).message}${cause ? ` (${cause})` : ''}; check the URL and that the server is running`);
      }
    }
    if (res.status === 200 && validator) {
      await res.body?.cancel();
      throw new GgufError(`${label} changed on the server while it was loading: load it again`);
    }
    if (res.status !== 206) {
      await res.body?.cancel();
      if (res.status === 200) throw new GgufError(`the server of ${label} ignores HTTP Range requests: serve the file from a server that supports them (any static file server does)`);
      throw new GgufError(`cannot fetch ${label}: HTTP ${res.status} ${res.statusText}; check the URL`);
    }
    const total = totalOf(res.headers.get('content-range'));
    if (total === undefined) throw new GgufError(`the server of ${label} sent no byte total in Content-Range: cannot size the file`);
    if (!size) size = total;
    else if (total !== size) throw new GgufError(`${label} changed size on the server while it was loading: load it again`);
    validator ??= res.headers.get('etag') ?? res.headers.get('last-modified') ?? undefined;
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.byteLength !== Math.min(end, size) - start) {
      throw new GgufError(`the server sent ${bytes.byteLength} bytes of ${label} for a request of ${Math.min(end, size) - start}: the connection was cut; load it again`);
    }
    return bytes;
  }

  // The first window also tells the size (Content-Range's total).
  let winStart = 0;
  let win = await range(0, WINDOW);
  let closed = false;

  return {
    get size() {
      return size;
    },
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (closed) throw new GgufError(`read from ${label} after it was closed: load it again`);
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new GgufError(`read of ${length} bytes at offset ${offset} runs past the end of ${label} (${size} bytes): the file is truncated; download it again`);
      }
      if (length === 0) return new Uint8Array(0);
      if (offset >= winStart && offset + length <= winStart + win.byteLength) return win.subarray(offset - winStart, offset - winStart + length);
      if (length >= WINDOW) return range(offset, offset + length);
      winStart = offset;
      win = await range(offset, Math.min(size, offset + WINDOW));
      return win.subarray(0, length);
    },
    async close(): Promise<void> {
      closed = true;
      win = new Uint8Array(0);
    },
  };
}
