// printable(): file strings made safe for one terminal line; and, end to end,
// no control byte from a file reaches the terminal through `qllm info` or a
// load error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { printable } from '../src/errors.ts';
import { kv } from '../src/gguf/writer.ts';
import { qllm } from './cli/helpers.ts';
import { rewriteMeta } from './gguf/remeta.ts';
import { hasShared, sharedModel } from './shared.ts';

describe('printable', () => {
  it('escapes C0, DEL, C1, line separators and bidi overrides; keeps other text', () => {
    expect(printable('a\x1b[31mb\r\n\t\x00\x7f\x9b')).toBe('a\\x1b[31mb\\x0d\\x0a\\x09\\x00\\x7f\\x9b');
    expect(printable('x\u2028y\u202ez\u2066')).toBe('x\\u{2028}y\\u{202e}z\\u{2066}');
    expect(printable('Llama 3.2 1B — Instruct ▁héllo 日本 🦙')).toBe('Llama 3.2 1B — Instruct ▁héllo 日本 🦙');
  });

  it('caps the length after escaping, never inside an escape', () => {
    expect(printable('abcdef', 4)).toBe('abcd…');
    expect(printable('ab\x1bcdef', 4)).toBe('ab…');
    expect(printable('\x1b'.repeat(100))).toHaveLength(81);
    expect(printable('a'.repeat(80))).toBe('a'.repeat(80));
  });
});

/** Any control character but \t and \n. */
const control = (s: string) => [...s].some((ch) => {
  const c = ch.charCodeAt(0);
  return (c < 0x20 && c !== 9 && c !== 10) || (c >= 0x7f && c < 0xa0);
});

describe.skipIf(!hasShared)('file strings on the terminal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-escape-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const evil = '\x1b]0;pwned\x07\x1b[2J\r\nqllm: fake\x9b1m';

  it('qllm info shows an escaped name and tokenizer model, and its text and JSON carry no control byte', async () => {
    const path = await rewriteMeta(sharedModel('stories260K.gguf'), join(dir, 'name.gguf'), {
      'general.name': kv.str('general.name', `tiny${evil}`),
      'tokenizer.ggml.model': kv.str('tokenizer.ggml.model', `llama${evil}`),
    });
    for (const args of [[], ['--json']]) {
      const r = await qllm(['info', path, ...args]);
      expect(r.code).toBe(0);
      expect(control(r.stdout)).toBe(false);
      expect(control(r.stderr)).toBe(false);
      const name = args.length ? JSON.parse(r.stdout).name : r.stdout;
      expect(name).toContain('tiny\\x1b]0;pwned\\x07');
    }
  });

  it('a load error naming the architecture is one escaped line on stderr', async () => {
    const path = await rewriteMeta(sharedModel('stories260K.gguf'), join(dir, 'arch.gguf'), { 'general.architecture': kv.str('general.architecture', `llama${evil}`) });
    for (const cmd of [['info', path], ['run', path, '-p', 'hi', '-n', '1']]) {
      const r = await qllm(cmd);
      expect(control(r.stderr)).toBe(false);
      if (cmd[0] === 'run') {
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split('\n').filter((l) => !/^Warning: /.test(l))).toEqual([expect.stringMatching(/^qllm: architecture 'llama\\x1b\]0;pwned.*' is not supported/)]);
      }
    }
  });

  it('so is one naming the tokenizer model', async () => {
    const path = await rewriteMeta(sharedModel('stories260K.gguf'), join(dir, 'tok.gguf'), { 'tokenizer.ggml.model': kv.str('tokenizer.ggml.model', `bpe${evil}`) });
    // tokenize builds the tokenizer without loading the model: the CLI escapes every message it prints.
    for (const cmd of [['run', path, '-p', 'hi', '-n', '1'], ['tokenize', path, 'hi']]) {
      const r = await qllm(cmd);
      expect(r.code).toBe(1);
      expect(control(r.stderr)).toBe(false);
      expect(r.stderr).toMatch(/^qllm: .*'bpe\\x1b\]0;pwned\\x07\\x1b\[2J\\x0d\\x0aqllm: fake\\x9b1m'/m);
    }
  });
});
