// Resumable, verified download over node:http/https.
//   <dest>.part holds the bytes so far, <dest>.part.json the URL and the server's
//   validators (ETag, Last-Modified, size) it came with. A rerun (or an automatic
//   retry after a cut connection) asks for `Range: bytes=<size>-` with `If-Range:
//   <validator>`: a server whose file changed answers 200 and the download restarts
//   from zero, as it does when a 206 names other validators, or when none were
//   saved (nothing to tell a changed file by). <dest>.lock keeps a second qllm from
//   appending to the same .part. The file is renamed to <dest> only when complete,
//   verified against a known sha256 (given, or the hub's X-Linked-Etag) and parsed
//   as a GGUF whose tensor data all fits: an HTML login page, a body cut short by
//   a wrong Content-Length or a spliced file never gets the final name.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open as openFile, readFile, rename, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GgufError, UsageError } from '../errors.ts';
import { openGguf } from '../gguf/reader.ts';
import { atomicWriteFile, processAlive, syncDir } from '../util/atomic-write.ts';

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

/** What <dest>.part.json remembers about the response the .part came from. */
interface PartMeta { url: string; etag?: string; lastModified?: string; total?: number }

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SHA = /^[0-9a-f]{64}$/;
const GGUF_MAGIC = Buffer.from('GGUF');

function normEtag(v: string | string[] | undefined): string | undefined {
  const s = (Array.isArray(v) ? v[0] : v)?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return s && SHA.test(s) ? s : undefined;
}

const header = (res: http.IncomingMessage, name: string): string | undefined => {
  const v = res.headers[name];
  return (Array.isArray(v) ? v[0] : v)?.trim() || undefined;
};

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

/** The body is not a GGUF: raised from inside the stream, so that it is not retried like a cut connection. */
class NotGguf extends Error {}

/** First bytes shown in a message, printable ASCII only. */
const shown = (b: Buffer) => JSON.stringify(b.toString('latin1').replace(/[^\x20-\x7e]/g, '.'));

async function readMeta(path: string): Promise<PartMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as PartMeta;
    return typeof m?.url === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** A validator If-Range may carry: a strong ETag, else Last-Modified (RFC 9110 13.1.5). */
const ifRangeOf = (m: PartMeta | undefined) => (m?.etag && !m.etag.startsWith('W/') ? m.etag : m?.lastModified);

/** What differs between the saved validators and a 206's, or undefined when nothing does. */
function changed(m: PartMeta, res: http.IncomingMessage, total: number | undefined): string | undefined {
  const etag = header(res, 'etag');
  const lm = header(res, 'last-modified');
  if (m.etag && etag && etag !== m.etag) return `ETag ${m.etag} is now ${etag}`;
  if (m.lastModified && lm && lm !== m.lastModified) return `Last-Modified ${m.lastModified} is now ${lm}`;
  if (m.total !== undefined && total !== undefined && total !== m.total) return `size ${m.total} is now ${total}`;
  return undefined;
}

/** Locks handed out in this process: a lock file naming our own pid is live only if it is one of these. */
const heldLocks = new Set<string>();

/** Takes <dest>.lock so that two downloads never append to one .part; returns its release. */
async function lock(dest: string): Promise<() => Promise<void>> {
  const path = `${dest}.lock`;
  for (let tries = 0; ; tries++) {
    try {
      const fh = await openFile(path, 'wx');
      heldLocks.add(path);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        heldLocks.delete(path);
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UsageError(`cannot write ${path}: ${(e as Error).message.split('\n')[0]}; check that ${dirname(dest)} exists and is writable`);
      const text = (await readFile(path, 'utf8').catch(() => '')).trim();
      const pid = Number(text);
      // An empty lock is one being written this instant, unless it has been empty for a while.
      const young = text === '' && Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0) < 10_000;
      const live = young || (pid === process.pid ? heldLocks.has(path) : processAlive(pid));
      if (live || tries >= 2) {
        throw new UsageError(`another qllm (pid ${text || '?'}) is downloading ${dest}: wait for it to finish, or delete ${path} if that process is gone`);
      }
      await rm(path, { force: true }); // left by a process that was killed
    }
  }
}

/** The pid of a live process downloading to `dest` (holding <dest>.lock), if any. */
export async function downloader(dest: string): Promise<number | undefined> {
  const pid = Number((await readFile(`${dest}.lock`, 'utf8').catch(() => '')).trim());
  const live = pid === process.pid ? heldLocks.has(`${dest}.lock`) : processAlive(pid);
  return live ? pid : undefined;
}

export async function download(o: DownloadOptions): Promise<DownloadResult> {
  const expected = o.sha256?.toLowerCase();
  if (expected !== undefined && !SHA.test(expected)) throw new UsageError(`--sha256 ${o.sha256} is not 64 hex digits: pass the file's sha256`);
  const existing = await sizeOf(o.dest);
  if (existing !== undefined && expected) return presentOrRefuse(o.dest, expected, 'given', existing);
  const release = await lock(o.dest);
  try {
    return await locked(o, expected, existing);
  } finally {
    await release();
  }
}

async function locked(o: DownloadOptions, expectedIn: string | undefined, existing: number | undefined): Promise<DownloadResult> {
  const part = `${o.dest}.part`;
  const metaPath = `${part}.json`;
  const log = o.log ?? (() => {});
  const dropPart = () => Promise.all([rm(part, { force: true }), rm(metaPath, { force: true })]);
  let expected = expectedIn;
  let verifiedBy: DownloadResult['verifiedBy'] = expected ? 'given' : 'none';
  const retries = o.retries ?? 3;
  let resumedBytes = 0;
  let total: number | undefined;
  for (let attempt = 0; ; attempt++) {
    let offset = (await sizeOf(part)) ?? 0;
    let meta = offset > 0 ? await readMeta(metaPath) : undefined;
    const headers: Record<string, string> = {};
    if (offset > 0) {
      const ifRange = meta?.url === o.url ? ifRangeOf(meta) : undefined;
      if (ifRange || expected) {
        // Without a validator the sha256 check at the end still catches a changed file.
        headers.Range = `bytes=${offset}-`;
        if (ifRange) headers['If-Range'] = ifRange;
      } else {
        log(`${part} cannot be matched to the server's file (${meta?.url === o.url ? 'the server sent no ETag or Last-Modified' : 'no record of where it came from'}); starting over`);
        await dropPart();
        offset = 0;
      }
    }
    const { res, hubSha, close } = await open(o.url, headers, o).catch((e) => {
      if (o.signal?.aborted) throw new UsageError(`download cancelled${offset > 0 ? `; run the same command again to resume from ${part}` : ''}`);
      throw new UsageError(`cannot reach ${o.url}: ${(e as Error).message.split('\n')[0]}; check the network connection`);
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
      await dropPart();
      continue;
    }
    if (status !== 200 && status !== 206) { close(); throw httpFail(o.url, status); }
    const type = header(res, 'content-type') ?? '';
    if (/^\s*(text\/html|application\/xhtml)/i.test(type)) {
      close();
      throw new UsageError(`${o.url} sent a web page (Content-Type ${type.split(';')[0]}), not a GGUF file: a login or Wi-Fi portal, or a wrong URL; check the network and the URL`);
    }
    if (status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
      total = m?.[3] === '*' ? undefined : Number(m?.[3]);
      const why = !m || Number(m[1]) !== offset ? `the server answered the range request with ${res.headers['content-range']}` : meta && changed(meta, res, total);
      if (why) {
        close();
        log(`${why}; starting over`);
        await dropPart();
        continue;
      }
      resumedBytes += offset;
      log(`resuming at ${offset} bytes`);
    } else {
      if (offset > 0) log(`the server sent the whole file (HTTP 200${headers['If-Range'] ? ': it changed since the partial download' : ''}); restarting from the beginning`);
      offset = 0;
      const len = Number(res.headers['content-length']);
      total = Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : undefined;
      meta = { url: o.url, etag: header(res, 'etag'), lastModified: header(res, 'last-modified'), total };
    }

    // An existing file with no known sha256: a different size is surely a different file.
    if (existing !== undefined && attempt === 0) {
      if (expected) { close(); await dropPart(); return presentOrRefuse(o.dest, expected, verifiedBy, existing); }
      if (total !== undefined && total !== existing) { close(); await dropPart(); throw refuse(o.dest, `${existing} bytes, the server has ${total}`); }
    }

    let done = offset;
    // The first bytes of a fresh body must be the GGUF magic: an HTML or JSON error page is refused at once.
    let head = offset > 0 ? undefined : Buffer.alloc(0);
    o.onProgress?.(done, total);
    // No I/O between the response and receive(): the body's first bytes are buffered in
    // `res`, and a connection closed meanwhile would discard them.
    const fresh = offset === 0;
    try {
      const receiving = receive(res, part, offset > 0, (chunk) => {
        if (head) {
          const seen = Buffer.concat([head, chunk]);
          if (seen.length < 4) head = seen;
          else if (!seen.subarray(0, 4).equals(GGUF_MAGIC)) {
            throw new NotGguf(`${o.url} is not a GGUF file (it starts with ${shown(seen.subarray(0, 40))}, not "GGUF"): check the URL, or whether the network shows a login page`);
          } else head = undefined;
        }
        done += chunk.length;
        o.onProgress?.(done, total);
      });
      receiving.catch(() => {}); // awaited below; this only keeps a failure during the meta write from being "unhandled"
      // Beside the .part from its first byte on: what a later resume checks the server against.
      if (fresh) await atomicWriteFile(metaPath, JSON.stringify(meta)).catch((e) => { close(); throw e; });
      await receiving;
      if (total !== undefined && done !== total) throw new Error(`connection closed at ${done} of ${total} bytes`);
      if (total === undefined && !res.complete) throw new Error(`connection closed at ${done} bytes`);
      break;
    } catch (e) {
      close();
      if (e instanceof NotGguf) { await dropPart(); throw new UsageError(e.message); }
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
    await dropPart();
    throw new GgufError(`sha256 of the download is ${got}, expected ${expected}: the file is corrupt or not the one asked for; it was deleted, run again to retry`);
  }
  await checkGguf(part, o.url).catch(async (e: unknown) => {
    await dropPart();
    throw e;
  });
  if (existing !== undefined) {
    // No sha256 was known: keep the old file if it is the same bytes, refuse otherwise.
    const old = await sha256File(o.dest);
    await dropPart();
    if (old === got) return { path: o.dest, bytes, sha256: got, status: 'present', verifiedBy, resumedBytes };
    throw refuse(o.dest, `sha256 ${old}, the download has ${got}`);
  }
  // On disk before it has its final name, so that a power cut cannot leave a short file under it.
  const fh = await openFile(part, 'r+');
  await fh.sync().finally(() => fh.close());
  await rename(part, o.dest);
  await rm(metaPath, { force: true });
  await syncDir(dirname(o.dest));
  return { path: o.dest, bytes, sha256: got, status: 'downloaded', verifiedBy, resumedBytes };
}

/**
 * Appends (or writes) the body to `path`. `onChunk` sees each chunk first and may throw
 * to refuse it. Unlike a stream pipeline, which throws away what it buffered when the
 * connection drops, every chunk handed to the file is flushed before this settles, so
 * the .part holds exactly the bytes counted and a resume starts where it should.
 */
function receive(res: http.IncomingMessage, path: string, append: boolean, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) return reject(res.errored ?? new Error('connection closed'));
    const ws = createWriteStream(path, { flags: append ? 'a' : 'w' });
    let err: Error | undefined;
    let stopped = false;
    const stop = (e?: Error) => {
      err ??= e;
      if (stopped) return;
      stopped = true;
      res.off('data', onData);
      ws.end();
    };
    const onData = (chunk: Buffer) => {
      try {
        onChunk(chunk);
      } catch (e) {
        stop(e as Error);
        res.destroy();
        return;
      }
      // Pause only with a lot queued: a paused response loses its buffered bytes if the
      // connection drops, and those are then fetched again on resume.
      if (!ws.write(chunk) && ws.writableLength > 16 << 20) {
        res.pause();
        ws.once('drain', () => res.resume());
      }
    };
    res.on('data', onData);
    res.once('end', () => stop());
    res.once('error', (e) => stop(e));
    res.once('close', () => stop(res.complete ? undefined : new Error('connection closed')));
    ws.once('error', (e) => {
      err ??= new Error(`cannot write ${path}: ${e.message.split('\n')[0]}`);
      res.destroy();
      reject(err);
    });
    ws.once('close', () => (err ? reject(err) : resolve()));
  });
}

/** The header parses and every tensor's data lies inside the file (openGguf checks both). */
async function checkGguf(path: string, url: string): Promise<void> {
  let f: Awaited<ReturnType<typeof openGguf>>;
  try {
    f = await openGguf(path, `downloaded from ${url}`);
  } catch (e) {
    throw new GgufError(`${(e as Error).message.split('\n')[0]} (nothing was saved)`);
  }
  await f.close();
}

const refuse = (dest: string, why: string) => new UsageError(`${dest} already exists and differs (${why}): delete it or pass -o DIR to put the download elsewhere`);

async function presentOrRefuse(dest: string, expected: string, verifiedBy: DownloadResult['verifiedBy'], bytes: number): Promise<DownloadResult> {
  const have = await sha256File(dest);
  if (have !== expected) throw refuse(dest, `sha256 ${have}, expected ${expected}`);
  return { path: dest, bytes, sha256: have, status: 'present', verifiedBy, resumedBytes: 0 };
}
