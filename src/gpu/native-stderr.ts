// Dawn's native code writes some warnings straight to file descriptor 2, where
// no Node API can filter them. On lavapipe every process printed two, from
// Dawn's Limits.cpp as the adapter's limits are gathered during the first
// requestAdapter() (the Vulkan driver reports 1000000 dynamic buffers and Dawn
// caps them at 16): "Warning: maxDynamic…BuffersPerPipelineLayout artificially
// reduced from 1000000 to 16 to fit dynamic offset allocation limit." They
// depend neither on the limits requested nor on a toggle, and Dawn's logging
// callback does not carry them. So, around that call, fd 2 points at a
// temporary file; afterwards the original stderr is put back and whatever
// else was written there is passed on. Node has no dup2: "putting back" opens
// the same terminal, pipe or append-mode file anew, which is the same thing for
// those. A file opened without append (2>log, 2>&1) would lose the offset it
// shares with stdout, and a socket (a Node parent's stdio) cannot be reopened:
// those are left alone, warnings included.
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The warnings of Dawn's Limits.cpp that carry nothing a qllm user can act on. */
export const DAWN_LIMIT_WARNING = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;

/**
 * Runs `fn` (synchronous: a native call) with what native code writes to fd 2
 * captured; lines matching `drop` are discarded, the rest reach stderr after.
 * Where fd 2 cannot be reopened (not Linux, a socket, closed), `fn` just runs.
 */
export function filterNativeStderr<T>(fn: () => T, drop: RegExp): T {
  if (typeof process === 'undefined' || process.platform !== 'linux') return fn();
  let flags: number;
  let saved: number;
  try {
    const st = fstatSync(2);
    // Non-blocking for a pipe: opening one whose reader has gone would otherwise wait forever (it fails instead).
    if (st.isFIFO()) flags = constants.O_WRONLY | constants.O_NONBLOCK;
    else if (st.isCharacterDevice()) flags = constants.O_WRONLY | constants.O_NOCTTY;
    else if (st.isFile() && appending(2)) flags = constants.O_WRONLY | constants.O_APPEND;
    else return fn();
    // A second handle on the same pipe or terminal, to put back as fd 2 afterwards.
    saved = openSync('/proc/self/fd/2', flags);
  } catch {
    return fn();
  }
  const path = join(tmpdir(), `qllm-stderr-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let captured = -1;
  try {
    closeSync(2);
    // The lowest free descriptor: 2.
    captured = openSync(path, 'wx+', 0o600);
    unlinkSync(path);
  } catch {
    // No temporary file: put stderr back and run unfiltered.
    if (captured >= 0) closeSync(captured);
    restore(saved, flags);
    return fn();
  }
  if (captured !== 2) {
    // Another thread took fd 2 between the close and the open: leave it, run unfiltered.
    closeSync(captured);
    closeSync(saved);
    return fn();
  }
  let text = '';
  try {
    return fn();
  } finally {
    try {
      const size = fstatSync(2).size;
      const buf = Buffer.alloc(size);
      readSync(2, buf, 0, size, 0);
      text = buf.toString('utf8');
    } catch {
      // Nothing readable: nothing to pass on.
    }
    closeSync(2);
    restore(saved, flags);
    const rest = text.split('\n').filter((l, i, all) => !drop.test(l) && !(i === all.length - 1 && l === ''));
    if (rest.length) writeSync(2, `${rest.join('\n')}\n`);
  }
}

/** Whether fd was opened in append mode (2>>log): every write then goes to the end, whatever the offset. */
function appending(fd: number): boolean {
  const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return !!m && (Number.parseInt(m[1], 8) & constants.O_APPEND) !== 0;
}

/** Reopens the saved handle as fd 2 (the lowest free descriptor once 2 is closed). */
function restore(saved: number, flags: number): void {
  const fd = openSync(`/proc/self/fd/${saved}`, flags);
  if (fd !== 2) closeSync(fd); // fd 2 was taken meanwhile; nothing safe to do
  closeSync(saved);
}
