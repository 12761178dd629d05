// `qllm chat` driven by a program through a real pty (util-linux `script`
// allocates it), as a person at a terminal would use it: two turns, a Ctrl-C
// that stops a long reply but not the program, then /exit; and fed from a pipe,
// as a script would use it: a turn per line, plain replies, exit 0 at the end.
// And how a reasoning model's reply is printed (its thinking dimmed, marked or
// hidden) and kept for the next turn.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Token } from '../../src/api.ts';
import { historyTurn, ReplyPrinter } from '../../src/cli/chat.ts';
import { hasShared, repoRoot, sharedModel } from '../shared.ts';
import { shell } from './helpers.ts';

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
      // The first turn fed its whole prompt: no tokens came from the cache yet.
      expect(c.out().slice(mark)).toMatch(/prefill [\d.]+ tok\/s \(\d+ tokens\)/);
      mark = c.out().length;
      c.send('Tell me about Lily\r');
      await c.waitFor(/> $/m, mark + 25);
      mark = c.out().length;
      c.send('/stats\r');
      // The second turn: the rate is over its new tokens, the rest came from the KV cache.
      await c.waitFor(/prefill [\d.]+ tok\/s \(\d+ new tokens; \d+ reused from the cache\)/, mark);
      c.send('/exit\r');
      expect(await c.exited).toBe(0);
      // The note comes before the first reply, which it explains.
      expect(c.out().indexOf('no chat template')).toBeLessThan(c.out().indexOf('[stopped]'));
      expect(c.out().indexOf('no chat template')).toBeGreaterThanOrEqual(0);
    } finally {
      c.child.kill('SIGKILL');
    }
  });

  it('Ctrl-C at the prompt exits 130', async () => {
    const c = startChat([sharedModel('stories260K.gguf'), '-c', '64']);
    try {
      await c.waitFor(/> $/m);
      c.send('\x03');
      expect(await c.exited).toBe(130);
    } finally {
      c.child.kill('SIGKILL');
    }
  });
});

describe.skipIf(!hasShared)('qllm chat from a pipe', () => {
  it('answers one turn per line, prints each reply plainly, runs slash commands, exits 0 at the end of input', async () => {
    const model = sharedModel('stories260K.gguf');
    const r = await shell(`printf 'Hello\\nAnd then?\\n/stats\\nTell me more\\n' | qllm chat '${model}' -n 12 --temp 0 -c 256`);
    expect(r.code, r.stderr).toBe(0);
    const replies = r.stdout.split('\n');
    expect(replies.pop()).toBe(''); // ends with a newline
    expect(replies).toHaveLength(3);
    for (const line of replies) expect(line).toMatch(/^[^\s>]/); // no "> " prompt, no leading space
    expect(r.stdout).not.toContain('\u001b'); // no colours or cursor codes
    expect(r.stderr).toMatch(/no chat template/);
    expect(r.stderr).toMatch(/prefill [\d.]+ tok\/s \(\d+ new tokens; \d+ reused from the cache\)/); // /stats after turn two
    expect(r.stderr).not.toMatch(/readline was closed|\n\s+at /);
  });

  it('goes on past the context (3× it) by context shift, keeping the system message; --no-context-shift stops at the end', async () => {
    const model = sharedModel('stories260K.gguf');
    const lines = 'Once upon a time\\nAnd then?\\nWhat happened next?\\nTell me more\\n/stats\\n';
    const r = await shell(`printf '${lines}' | qllm chat '${model}' -n 48 --temp 0 -c 64 --system 'Tell stories.'`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(100); // replies may hold newlines of their own
    // 4 replies of 48 tokens and their prompts: more than 3× the 64-token context.
    expect(r.stderr).toMatch(/\(48 tokens, length\) \| (context shifted \d+ times?|\d+ prompt tokens cut to fit)/);
    const off = await shell(`printf '${lines}' | qllm chat '${model}' -n 48 --temp 0 -c 64 --no-context-shift`);
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/^qllm: prompt of \d+ tokens does not fit the context of 64/m);
  });
});

describe('a reasoning model\'s reply in qllm chat', () => {
  // As chat() streams it: the thinking in Token.reasoning, the answer in text.
  const reply: Token[] = [
    { text: '', tokenId: 1, reasoning: '\nThe user' },
    { text: '', tokenId: 2, reasoning: ' greets me.' },
    { text: '\n\nHello', tokenId: 3 },
    { text: ' there!', tokenId: 4 },
  ];
  async function* tokens(ts: Token[]) { yield* ts; }
  const printed = async (ts: Token[], o: { color: boolean; hide: boolean }) => {
    let out = '';
    await new ReplyPrinter((s) => { out += s; }, o).print(tokens(ts));
    return out;
  };

  it('dims the thinking at a terminal, then the answer', async () => {
    expect(await printed(reply, { color: true, hide: false })).toBe('\u001b[2mThe user greets me.\u001b[22m\n\nHello there!');
  });

  it('marks it with plain lines elsewhere (as Ollama\'s CLI), and leaves it out with --hide-reasoning', async () => {
    expect(await printed(reply, { color: false, hide: false })).toBe('Thinking...\nThe user greets me.\n...done thinking.\n\nHello there!');
    expect(await printed(reply, { color: true, hide: true })).toBe('Hello there!');
  });

  it('ends the dimming of a reply cut off while thinking; prints a plain reply as before', async () => {
    expect(await printed(reply.slice(0, 2), { color: true, hide: false })).toBe('\u001b[2mThe user greets me.\u001b[22m');
    expect(await printed([{ text: ' Once', tokenId: 1 }, { text: ' upon', tokenId: 2 }], { color: true, hide: false })).toBe('Once upon');
  });

  it('keeps the thinking apart from the answer in the history', () => {
    expect(historyTurn({ role: 'assistant', content: ' Hello there! ', reasoning: 'The user greets me.' })).toEqual({ role: 'assistant', content: 'Hello there!', reasoning: 'The user greets me.' });
    expect(historyTurn({ role: 'assistant', content: 'Hi\n' })).toEqual({ role: 'assistant', content: 'Hi' });
  });
});
