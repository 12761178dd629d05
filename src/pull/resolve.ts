// Models by name, as llama.cpp's -hf and Ollama users expect: a model argument
// `hf:owner/repo[@revision]/path/file.gguf` is a file in qllm's cache,
//   $QLLM_CACHE, else $XDG_CACHE_HOME/qllm, else ~/.cache/qllm
//     hf/<owner>/<repo>/<revision>/<path>
// downloaded on first use (resume, progress bar, sha256 and GGUF checks from
// download.ts) and read from there afterwards without touching the network.
import { homedir } from 'node:os';
import { mkdir, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { GgufError, UsageError, isQllmError } from '../errors.ts';
import { download, downloader } from './download.ts';
import { downloadProgress, fmtBytes, verifiedText } from './progress.ts';
import { resolveSource } from './source.ts';

export interface ResolveOptions {
  /** Cache root; default cacheRoot(). */
  cacheDir?: string;
  /** No progress bar or notes on stderr. */
  quiet?: boolean;
}

/** Where downloaded models live: QLLM_CACHE, else the XDG cache directory. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.QLLM_CACHE) return resolve(env.QLLM_CACHE);
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(xdg, 'qllm');
}

export interface HfParts { owner: string; repo: string; revision: string; path: string }

/** The cache path of an hf: file. The revision is one directory (refs/pr/1 → refs%2Fpr%2F1). */
export function cachePath(root: string, h: HfParts): string {
  return join(root, 'hf', h.owner, h.repo, encodeURIComponent(h.revision), ...h.path.split('/'));
}

/** The hf: name of a file under <root>/hf, the inverse of cachePath. */
function nameOf(root: string, file: string): string {
  const [owner, repo, rev, ...path] = relative(join(root, 'hf'), file).split(sep);
  const revision = decodeURIComponent(rev);
  return `hf:${owner}/${repo}${revision === 'main' ? '' : `@${revision}`}/${path.join('/')}`;
}

/** `hf:…` (or `owner/repo/…` as `qllm ls` shows it without the prefix) → its parts. */
function parseName(name: string): { spec: string; url: string; hf: HfParts } {
  const spec = name.startsWith('hf:') ? name : `hf:${name}`;
  const s = resolveSource(spec);
  return { spec, url: s.url, hf: s.hf! };
}

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

/**
 * A model argument as a local path: plain paths pass through unchanged; an hf: spec is
 * its cache file, downloaded first if absent (progress on stderr). A cached file is used
 * without any request, so it works offline.
 */
export async function resolveModelArg(spec: string, opts: ResolveOptions = {}): Promise<string> {
  if (!spec.startsWith('hf:')) return spec;
  const { url, hf } = parseName(spec);
  const root = opts.cacheDir ?? cacheRoot();
  const path = cachePath(root, hf);
  if (await isFile(path)) return path;
  await mkdir(dirname(path), { recursive: true }).catch((e) => {
    throw new UsageError(`cannot create the model cache ${dirname(path)}: ${(e as Error).message.split('\n')[0]}; set QLLM_CACHE to a writable directory`);
  });
  const progress = downloadProgress(hf.path.split('/').at(-1)!, 'qllm', opts.quiet ? devNull : process.stderr);
  if (!opts.quiet) process.stderr.write(`qllm: downloading ${spec} into ${root}\n`);
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  try {
    const r = await download({ url, dest: path, signal: ac.signal, onProgress: progress.onProgress, log: progress.log });
    progress.done();
    if (!opts.quiet) process.stderr.write(`qllm: ${fmtBytes(r.bytes)} saved, ${verifiedText(r)}\n`);
    return path;
  } catch (e) {
    await pruneEmptyDirs(root, path); // a 404 or a refused file leaves no empty owner/repo directories
    if (!isQllmError(e)) throw e;
    // One line that says which model could not be had, and why.
    const msg = `cannot get ${spec} (it is not in the cache ${root}): ${e.message}`;
    throw e instanceof GgufError ? new GgufError(msg) : new UsageError(msg);
  } finally {
    progress.done();
    process.off('SIGINT', onSig);
  }
}

/** A write stream that shows nothing (quiet mode): not a TTY, so the bar never draws. */
const devNull = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

export interface CachedModel {
  /** hf:owner/repo[@revision]/path */
  name: string;
  path: string;
  bytes: number;
  /** An interrupted download (<file>.part): running the model again resumes it. */
  partial: boolean;
}

/** Every model in the cache, by name. Lock, temp and validator files are not models. */
export async function listCached(root = cacheRoot()): Promise<CachedModel[]> {
  const out: CachedModel[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && !/\.(lock|tmp|part\.json)$/.test(e.name)) {
        const partial = e.name.endsWith('.part');
        const file = partial ? p.slice(0, -'.part'.length) : p;
        out.push({ name: nameOf(root, file), path: file, bytes: (await stat(p)).size, partial });
      }
    }
  };
  await walk(join(root, 'hf'));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A cached model (or a partial download of it) by name; a UsageError if absent or being downloaded. */
export async function findCached(name: string, root = cacheRoot()): Promise<{ spec: string; path: string; bytes: number }> {
  const { spec, hf } = parseName(name);
  const path = cachePath(root, hf);
  const pid = await downloader(path);
  if (pid !== undefined) throw new UsageError(`${spec} is being downloaded by pid ${pid}: stop that first, then remove it`);
  let bytes = 0;
  let found = false;
  for (const p of [path, `${path}.part`]) {
    const s = await stat(p).catch(() => undefined);
    if (s?.isFile()) {
      found = true;
      bytes += s.size;
    }
  }
  if (!found) throw new UsageError(`${spec} is not in the cache ${root}: 'qllm ls' lists the cached models`);
  return { spec, path, bytes };
}

/** Removes one model (and any partial download of it); returns the bytes freed. */
export async function removeCached(name: string, root = cacheRoot()): Promise<number> {
  const { path, bytes } = await findCached(name, root);
  await Promise.all([path, `${path}.part`, `${path}.part.json`, `${path}.lock`].map((p) => rm(p, { force: true })));
  await pruneEmptyDirs(root, path);
  return bytes;
}

/** Removes the empty owner/repo/revision/… directories above `file`, up to <root>/hf. */
async function pruneEmptyDirs(root: string, file: string): Promise<void> {
  const top = join(root, 'hf');
  for (let d = dirname(file); d.startsWith(join(top, '')) && d !== top; d = dirname(d)) {
    if (!(await rmdir(d).then(() => true, () => false))) break;
  }
}
