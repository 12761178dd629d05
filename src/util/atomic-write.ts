// Atomic file output, shared by every writer in qllm (GGUF writer, quantize, pull,
// perplexity's KL base). A file is written under a temp name of its own beside
// the target, `<target>.<pid>.<random>.tmp`, opened exclusively ('wx'), fsynced,
// then renamed over the target. So:
//   - two processes writing the same target never share a temp file: the last
//     rename wins and the target is always one of the complete outputs;
//   - a failure or a kill never leaves a partial file under the target name;
//   - a temp file is removed on failure, on process.exit (Ctrl-C handlers call
//     it), and, if a kill -9 left one, by the next write to the same target.
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.ts';

/** Temp files of this process not yet committed or discarded: removed if the process exits first. */
const live = new Set<string>();
let exitHook = false;
function track(tmp: string): void {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const p of live) {
        try {
          unlinkSync(p);
        } catch {
          // already gone
        }
      }
    });
  }
  live.add(tmp);
}

/** Whether a process with this id exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0];
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A unique temp name beside `path`. */
export function tempPathFor(path: string): string {
  return `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** Removes `<path>.<pid>.<hex>.tmp` files whose process is gone (left by a kill -9). Best effort. */
export async function removeStaleTemps(path: string): Promise<void> {
  const re = new RegExp(`^${escapeRe(basename(path))}\\.(\\d+)\\.[0-9a-f]{8}\\.tmp$`);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const n of names) {
    const m = re.exec(n);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await rm(join(dirname(path), n), { force: true }).catch(() => {});
  }
}

/** fsync a directory so that a rename in it survives a power cut. Not possible everywhere (Windows): best effort. */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // not supported on this platform or filesystem
  } finally {
    await fh?.close().catch(() => {});
  }
}

export interface TempFile {
  /** The final path. */
  readonly path: string;
  /** The temp file being written. */
  readonly tmp: string;
  readonly fh: FileHandle;
  /** Writes all of `b` at `pos` (or at the current position). */
  write(b: Uint8Array, pos?: number): Promise<void>;
  /** fsync, close, rename over `path`. The temp is removed if any step fails. */
  commit(): Promise<void>;
  /** Closes and removes the temp file; never throws. */
  discard(): Promise<void>;
}

/** Creates an exclusive temp file for `path`. Errors are one-line UsageErrors naming the path. */
export async function createTemp(path: string): Promise<TempFile> {
  await removeStaleTemps(path);
  const tmp = tempPathFor(path);
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'wx');
  } catch (e) {
    throw new UsageError(`cannot write ${path}: ${firstLine(e)}; check that its directory exists and is writable`);
  }
  track(tmp);
  let done = false;
  const discard = async () => {
    if (done) return;
    done = true;
    await fh.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    live.delete(tmp);
  };
  return {
    path,
    tmp,
    fh,
    async write(b, pos) {
      let off = 0;
      while (off < b.length) {
        const { bytesWritten } = await fh.write(b, off, b.length - off, pos === undefined ? null : pos + off);
        off += bytesWritten;
      }
    },
    async commit() {
      if (done) throw new UsageError(`cannot finish ${path}: its temp file was already closed; this is a qllm bug, please report it`);
      try {
        await fh.sync();
        await fh.close();
        await rename(tmp, path);
      } catch (e) {
        await discard();
        throw new UsageError(`cannot write ${path}: ${firstLine(e)}; check the disk space and permissions`);
      }
      done = true;
      live.delete(tmp);
      await syncDir(dirname(path));
    },
    discard,
  };
}

/** writeFile, atomically: the target holds the old content or all of `data`, never a part. */
export async function atomicWriteFile(path: string, data: Uint8Array | string): Promise<void> {
  const t = await createTemp(path);
  try {
    await t.write(typeof data === 'string' ? Buffer.from(data) : data);
  } catch (e) {
    await t.discard();
    throw new UsageError(`cannot write ${path}: ${firstLine(e)}; check the disk space`);
  }
  await t.commit();
}
