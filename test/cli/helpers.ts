// Runs the real `qllm` bin in a child process, as a user would.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../shared.ts';

const exec = promisify(execFile);
const bin = join(repoRoot, 'bin', 'qllm.mjs');

/** env: variables added to this process's environment for the child. */
export async function qllm(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [bin, ...args], { maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}


/**
 * Runs a bash command line in which `qllm` is the bin. Its pipes are real pipes,
 * unlike execFile's stdio (socket pairs), as a user's `| head` or `2>&1 | less` is.
 */
export async function shell(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const prelude = `qllm() { '${process.execPath}' '${bin}' "$@"; }\n`;
  try {
    const { stdout, stderr } = await exec('/bin/bash', ['-c', prelude + command], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
