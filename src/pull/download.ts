// Resumable, verified download over node:http/https.
//   <dest>.part holds the bytes so far; a rerun (or an automatic retry after a cut
//   connection) asks for `Range: bytes=<size>-`. A server that answers 200 instead
//   of 206 gets a clean restart. The file is renamed to <dest> only when complete
//   and, when a sha256 is known (given, or the hub's X-Linked-Etag), verified.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { GgufError, UsageError } from '../errors.ts';

export interface DownloadOptions {
  url: string;
  /** Final path; the partial file is `${dest}.part`. */
  dest: string;
  /** Expected sha256 (hex). Otherwise the hub's X-Linked-Etag is used when it is one. */
  sha256?: string;
  /** Automatic resumes after a cut connection before giving up. Default 3. */
  retries?: number;
  /** Socket idle timeout. Default 30 s. */
  idleTimeoutMs?: number;
  onProgress?: (done: number, total: number | undefined) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** 'present': an identical file was already there, nothing was written. */
  status: 'downloaded' | 'present';
  /** Where the sha256 that was checked came from. */
  verifiedBy: 'given' | 'hub' | 'none';
  /** Bytes reused from an earlier .part (over all attempts). */
  resumedBytes: number;
}

interface Opened { res: http.IncomingMessage; hubSha?: string; close: () => void }

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SHA = /^[0-9a-f]{64}$/;

function normEtag(v: string | string[] | undefined): string | undefined {
  const s = (Array.isArray(v) ? v[0] : v)?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return s && SHA.test(s) ? s : undefined;
}

/** GET following redirects; notes the LFS sha256 the hub sends on the way (X-Linked-Etag, or ETag on huggingface.co). */
function open(url: string, headers: Record<string, string>, o: DownloadOptions, hops = 0): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const get = u.protocol === 'https:' ? https.get : http.get;
    const h: Record<string, string> = { 'User-Agent': 'qllm-pull', 'Accept-Encoding': 'identity', ...headers };
    // A token for gated hub repos goes to the hub only, never to the CDN it redirects to.
    if (process.env.HF_TOKEN && /(^|\.)huggingface\.co$/.test(u.hostname)) h.Authorization = `Bearer ${process.env.HF_TOKEN}`;
    const req = get(u, { headers: h, signal: o.signal }, (res) => {
      const hubSha = normEtag(res.headers['x-linked-etag']) ?? (/(^|\.)huggingface\.co$/.test(u.hostname) ? normEtag(res.headers.etag) : undefined);
      if (REDIRECTS.has(res.statusCode ?? 0) && res.headers.location) {
        res.resume();
        if (hops >= 10) return reject(new UsageError(`${url} redirects more than 10 times: check the URL`));
        const next = new URL(res.headers.location, u).href;
        open(next, headers, o, hops + 1).then((r) => resolve({ ...r, hubSha: hubSha ?? r.hubSha }), reject);
        return;
      }
      resolve({ res, hubSha, close: () => { res.destroy(); req.destroy(); } });
    });
    req.setTimeout(o.idleTimeoutMs ?? 30_000, () => req.destroy(new Error(`no data for ${(o.idleTimeoutMs ?? 30_000) / 1000} s`)));
    req.on('error', reject);
  });
}

async function sizeOf(path: string): Promise<number | undefined> {
  try { return (await stat(path)).size; } catch { return undefined; }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

const httpFail = (url: string, status: number | undefined) => new UsageError(
  `GET ${url} answered HTTP ${status}${status === 404 ? ' (not found: check the owner, repo and path)' : status === 401 || status === 403 ? ' (not allowed: gated or private; set HF_TOKEN)' : ''}`,
);

export async function download(o: DownloadOptions): Promise<DownloadResult> {
  const part = `${o.dest}.part`;
  const log = o.log ?? (() => {});
  let expected = o.sha256?.toLowerCase();
  if (expected !== undefined && !SHA.test(expected)) throw new UsageError(`--sha256 ${o.sha256} is not 64 hex digits: pass the file's sha256`);
  let verifiedBy: DownloadResult['verifiedBy'] = expected ? 'given' : 'none';
  const existing = await sizeOf(o.dest);
  if (existing !== undefined && expected) return presentOrRefuse(o.dest, expected, verifiedBy, existing);

  const retries = o.retries ?? 3;
  let resumedBytes = 0;
  let total: number | undefined;
  for (let attempt = 0; ; attempt++) {
    let offset = (await sizeOf(part)) ?? 0;
    const { res, hubSha, close } = await open(o.url, offset > 0 ? { Range: `bytes=${offset}-` } : {}, o).catch((e) => {
      throw o.signal?.aborted ? e : new UsageError(`cannot reach ${o.url}: ${(e as Error).message}`);
    });
    if (hubSha && !expected) { expected = hubSha; verifiedBy = 'hub'; }
    else if (hubSha && expected && hubSha !== expected) log(`warning: the hub says sha256 ${hubSha}, --sha256 says ${expected}; checking against --sha256`);
    const status = res.statusCode ?? 0;
    if (status === 416) {
      // Asked for bytes past the end: the .part is complete already, or longer than the file.
      close();
      const m = /\*\/(\d+)/.exec(String(res.headers['content-range'] ?? ''));
      if (m && Number(m[1]) === offset) { total = offset; break; }
      log(`${part} does not match the server's file; starting over`);
      await unlink(part);
      continue;
    }
    if (status !== 200 && status !== 206) { close(); throw httpFail(o.url, status); }
    if (status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== offset) {
        close();
        log(`server answered the range request with ${res.headers['content-range']}; starting over`);
        await unlink(part);
        continue;
      }
      total = m[3] === '*' ? undefined : Number(m[3]);
      resumedBytes += offset;
      log(`resuming at ${offset} bytes`);
    } else {
      if (offset > 0) log('server ignored the range request (HTTP 200); restarting from the beginning');
      offset = 0;
      const len = Number(res.headers['content-length']);
      total = Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : undefined;
    }

    // An existing file with no known sha256: a different size is surely a different file.
    if (existing !== undefined && attempt === 0) {
      if (expected) { close(); return presentOrRefuse(o.dest, expected, verifiedBy, existing); }
      if (total !== undefined && total !== existing) { close(); throw refuse(o.dest, `${existing} bytes, the server has ${total}`); }
    }

    let done = offset;
    o.onProgress?.(done, total);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) { done += chunk.length; o.onProgress?.(done, total); cb(null, chunk); },
    });
    try {
      await pipeline(res, counter, createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' }));
      if (total !== undefined && done !== total) throw new Error(`connection closed at ${done} of ${total} bytes`);
      if (total === undefined && !res.complete) throw new Error(`connection closed at ${done} bytes`);
      break;
    } catch (e) {
      close();
      if (o.signal?.aborted) throw new UsageError(`download cancelled at ${done} bytes; run the same command again to resume from ${part}`);
      if (attempt >= retries) {
        throw new UsageError(`download interrupted at ${done}${total ? ` of ${total}` : ''} bytes (${(e as Error).message}): run the same command again to resume from ${part}`);
      }
      log(`connection lost at ${done} bytes (${(e as Error).message}); resuming`);
    }
  }

  const bytes = (await sizeOf(part)) ?? 0;
  const got = await sha256File(part);
  if (expected && got !== expected) {
    await unlink(part);
    throw new GgufError(`sha256 of the download is ${got}, expected ${expected}: the file is corrupt or not the one asked for; it was deleted, run again to retry`);
  }
  if (existing !== undefined) {
    // No sha256 was known: keep the old file if it is the same bytes, refuse otherwise.
    const old = await sha256File(o.dest);
    await unlink(part);
    if (old === got) return { path: o.dest, bytes, sha256: got, status: 'present', verifiedBy, resumedBytes };
    throw refuse(o.dest, `sha256 ${old}, the download has ${got}`);
  }
  await rename(part, o.dest);
  return { path: o.dest, bytes, sha256: got, status: 'downloaded', verifiedBy, resumedBytes };
}

const refuse = (dest: string, why: string) => new UsageError(`${dest} already exists and differs (${why}): delete it or pass -o DIR to put the download elsewhere`);

async function presentOrRefuse(dest: string, expected: string, verifiedBy: DownloadResult['verifiedBy'], bytes: number): Promise<DownloadResult> {
  const have = await sha256File(dest);
  if (have !== expected) throw refuse(dest, `sha256 ${have}, expected ${expected}`);
  return { path: dest, bytes, sha256: have, status: 'present', verifiedBy, resumedBytes: 0 };
}
