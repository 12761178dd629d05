// `qllm run` end to end through the real bin: llama.cpp's greedy reference on
// stories260K, the quantized copies, and the one-line errors for bad input.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { hasShared, repoRoot, sharedModel, sharedRef } from '../shared.ts';
import { qllm, shell } from './helpers.ts';

const ref = hasShared ? JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8')) : undefined;
const refIds: number[] = ref ? ref.steps.map((s: { id: number }) => s.id) : [];

describe.skipIf(!hasShared)('qllm run on ../shared stories260K (llama.cpp reference)', () => {
  it('gives exactly llama.cpp\'s 48 greedy ids for "Once upon a time"', async () => {
    const r = await qllm(['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '48', '--temp', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.prompt_ids).toEqual(ref.prompt_ids);
    expect(j.ids).toEqual(refIds);
    expect(j.text.startsWith(', there was a little girl')).toBe(true);
    expect(j.stats.gpu_bytes.total).toBe(j.stats.gpu_bytes.weights + j.stats.gpu_bytes.kv + j.stats.gpu_bytes.activations + j.stats.gpu_bytes.other);
    expect(j.stats.f16_weight_bytes).toBe(292_800 * 2);
    expect(r.stderr).toMatch(/decode [\d.]+ tok\/s/);
  });

  it('streams plain text to stdout and stats to stderr', async () => {
    const r = await qllm(['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '12', '--temp', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^, there was a little girl/);
    expect(r.stderr).toMatch(/gpu memory: weights/);
    expect(r.stderr).toMatch(/weights: 1\.12 MiB, f16 would need 571\.88 KiB \(2\.00x larger than f16; quantize it with qllm quantize\)/);
  });

  it('keeps stderr to its own lines: no Dawn "Warning:" (stderr through a pipe, as a shell gives it)', async () => {
    const r = await shell(`qllm run '${sharedModel('stories260K.gguf')}' -p 'Once upon a time' -n 4 --temp 0 2>&1 >/dev/null | cat`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^load \d+ ms/);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Warning:'))).toEqual([]);
  });

  it('ends quietly when its output pipe closes (| head): no stack trace, exit 0', async () => {
    const r = await shell(`qllm run '${sharedModel('stories260K.gguf')}' -p 'Once upon a time' -n 300 --temp 0 | head -c 20; echo "exit \${PIPESTATUS[0]}" >&2`);
    expect(r.stdout).toBe(', there was a little');
    expect(r.stderr).toMatch(/exit (0|141)\n$/);
    expect(r.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
  });

  // Greedy stories260K ends its story and starts another with a BOS (id 1) at
  // step 342 of "Once upon a time"; llama.cpp prints control tokens only with --special.
  it('does not print a generated BOS; --special prints it as <s>', async () => {
    const args = ['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '400', '--temp', '0', '--no-stats'];
    const special = JSON.parse((await qllm([...args, '--special', '--json'])).stdout);
    expect(special.ids).toContain(1);
    expect(special.text.split('<s>')).toHaveLength(2);
    const plain = await qllm(args);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/Once upon a time/); // the second story, after the BOS
    expect(plain.stdout).not.toContain('<s>');
    expect(plain.stdout).toBe(`${special.text.replace('<s>', '')}\n`);
  });

  it('Ctrl-C during generation prints what it has and exits 130, as Ctrl-C during the load does', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'qllm.mjs'), 'run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '2000', '--temp', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    await new Promise<void>((res) =>
      child.stdout.on('data', (d) => {
        out += d;
        if (out.length > 40) res(); // text is streaming: generation is under way
      }),
    );
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toMatch(/decode [\d.]+ tok\/s \(\d+ tokens, abort\)/);
    expect(err).not.toMatch(/\n\s+at /);
  });

  // Quantized copies: they must run and mostly follow the f32 run; exact
  // agreement is not expected (see the closing note for the measured figures).
  for (const q of ['q8_0', 'q4_0', 'q4_1', 'q4_k_m']) {
    it(`runs stories260K-${q} greedily and starts like the f32 reference`, async () => {
      const r = await qllm(['run', sharedModel(`stories260K-${q}.gguf`), '-p', 'Once upon a time', '-n', '48', '--temp', '0', '--json', '--no-stats']);
      expect(r.code, r.stderr).toBe(0);
      const ids: number[] = JSON.parse(r.stdout).ids;
      expect(ids).toHaveLength(48);
      let prefix = 0;
      while (prefix < 48 && ids[prefix] === refIds[prefix]) prefix++;
      expect(prefix).toBeGreaterThanOrEqual(q === 'q8_0' ? 48 : 8);
    });
  }

  it('samples reproducibly with a seed', async () => {
    const args = ['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '24', '--temp', '0.9', '--seed', '42', '--json', '--no-stats'];
    const a = JSON.parse((await qllm(args)).stdout).ids;
    const b = JSON.parse((await qllm(args)).stdout).ids;
    expect(a).toEqual(b);
  });

  it('stops before a --stop string', async () => {
    const r = await qllm(['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '48', '--temp', '0', '--stop', 'Lily', '--json', '--no-stats']);
    const j = JSON.parse(r.stdout);
    expect(j.text).toBe(', there was a little girl named ');
  });
});

describe.skipIf(!hasShared)('qllm run errors are one line, exit 1', () => {
  const model = sharedModel('stories260K.gguf');
  const cases: [string, string[], RegExp][] = [
    ['-n 0', ['-p', 'hi', '-n', '0'], /-n 0/],
    ['negative -n', ['-p', 'hi', '-n', '-3'], /-n -3/],
    ['--top-p 2', ['-p', 'hi', '--top-p', '2'], /top-p 2/],
    ['--temp -1', ['-p', 'hi', '--temp', '-1'], /temp -1/],
    ['a prompt longer than the context', ['-c', '8', '-p', 'Once upon a time there was a little girl named Lily who liked to play'], /does not fit the context of 8/],
    ['-c beyond the model', ['-c', '99999', '-p', 'hi'], /exceeds the model's 2048/],
    ['-c 1', ['-c', '1', '-p', 'hi'], /-c 1 .*pass e\.g\. -c 2048/],
    ['a prompt without -p', ['Once upon a time'], /unexpected argument 'Once upon a time': pass the prompt with -p, e\.g\. qllm run \S+ -p "Once upon a time"/],
    ['a misspelled flag', ['-p', 'hi', '--tmep', '0'], /unknown option '--tmep': did you mean --temp\?/],
  ];
  for (const [name, args, re] of cases) {
    it(name, async () => {
      const r = await qllm(['run', model, ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('qllm:'))).toHaveLength(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }

  it('names an unsupported architecture', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qllm-run-'));
    const path = join(dir, 'neox.gguf');
    await writeFile(path, writeGgufToBytes({
      kv: [kv.str('general.architecture', 'gptneox'), kv.u32('gptneox.block_count', 1), kv.u32('gptneox.embedding_length', 32),
        kv.u32('gptneox.attention.head_count', 4), kv.u32('gptneox.feed_forward_length', 64), kv.u32('gptneox.context_length', 64),
        kv.str('tokenizer.ggml.model', 'llama'), kv.strArray('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', 'a']),
        kv.f32Array('tokenizer.ggml.scores', [0, 0, 0, -1]), kv.i32Array('tokenizer.ggml.token_type', [2, 3, 3, 1])],
      tensors: [],
    }));
    const r = await qllm(['run', path, '-p', 'a']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/gptneox/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('names a missing file and a directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qllm-run-'));
    expect((await qllm(['run', join(dir, 'missing.gguf'), '-p', 'x'])).stderr).toMatch(/does not exist/);
    expect((await qllm(['run', dir, '-p', 'x'])).stderr).toMatch(/is a directory/);
  });
});
