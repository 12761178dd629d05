// `qllm chat` driven by a program through a real pty (util-linux `script`
// allocates it), as a person at a terminal would use it: two turns, a Ctrl-C
// that stops a long reply but not the program, then /exit.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasShared, repoRoot, sharedModel } from '../shared.ts';

const haveScript = existsSync('/usr/bin/script');
if (!haveScript) console.warn('[qllm tests] util-linux `script` is absent: the pty chat test is skipped');

function startChat(args: string[]) {
  const cmd = [process.execPath, join(repoRoot, 'bin', 'qllm.mjs'), 'chat', ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'dumb' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d.toString()));
  child.stderr.on('data', (d) => (out += d.toString()));
  const waitFor = async (re: RegExp, from = 0, ms = 60_000) => {
    const t0 = Date.now();
    while (!re.test(out.slice(from))) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${re}; output so far:\n${out}`);
      if (child.exitCode !== null) throw new Error(`chat exited (${child.exitCode}) before ${re}; output:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const exited = new Promise<number>((res) => child.on('exit', (c) => res(c ?? -1)));
  return { child, out: () => out, waitFor, exited, send: (s: string) => child.stdin.write(s) };
}

describe.skipIf(!hasShared || !haveScript)('qllm chat through a pty', () => {
  it('answers two turns, stops a reply on Ctrl-C and keeps running, exits on /exit', async () => {
    const c = startChat([sharedModel('stories260K.gguf'), '--temp', '0', '-n', '1500', '-c', '2048']);
    try {
      await c.waitFor(/> $/m);
      let mark = c.out().length;
      c.send('Once upon a time\r');
      // A long reply: interrupt it once text is flowing.
      await c.waitFor(/\w{3,}/, mark + 20);
      c.send('\x03');
      await c.waitFor(/\[stopped\]/, mark);
      await c.waitFor(/> $/m, mark);
      expect(c.child.exitCode).toBeNull(); // Ctrl-C stopped the reply, not the program
      mark = c.out().length;
      c.send('/stats\r');
      await c.waitFor(/decode [\d.]+ tok\/s/, mark);
      mark = c.out().length;
      c.send('Tell me about Lily\r');
      await c.waitFor(/> $/m, mark + 25);
      c.send('/exit\r');
      expect(await c.exited).toBe(0);
      expect(c.out()).toMatch(/no chat template/);
    } finally {
      c.child.kill('SIGKILL');
    }
  });
});
