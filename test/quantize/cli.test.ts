// `qllm quantize` argument handling and output (run() called in-process).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/quantize.ts';
import { UsageError } from '../../src/errors.ts';
import { hasShared, sharedModel } from '../shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-quantize-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('qllm quantize CLI', () => {
  it('rejects missing arguments, unknown flags and unknown types with UsageErrors', async () => {
    await expect(run(['a.gguf'])).rejects.toThrow(/missing <out.gguf> <type>/);
    await expect(run(['a.gguf', 'b.gguf', 'Q4_0', '--bogus'])).rejects.toThrow(UsageError);
    await expect(run(['a.gguf', 'b.gguf', 'Q4_0', '--threads', '0'])).rejects.toThrow(/--threads 0/);
    await expect(run([sharedModel('stories260K.gguf'), join(dir, 'o.gguf'), 'Q3'])).rejects.toThrow(/unknown quantization type 'Q3': use one of .*Q4_K_M/);
  });

  it.skipIf(!hasShared)('--report prints per-tensor rows, fallback notes and totals', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
    const w = vi.spyOn(process.stderr, 'write').mockImplementation(((s: string) => {
      err.push(String(s));
      return true;
    }) as typeof process.stderr.write);
    try {
      await run([sharedModel('stories260K.gguf'), join(dir, 'r.gguf'), 'q4_k_m', '--report']);
    } finally {
      log.mockRestore();
      w.mockRestore();
    }
    const text = out.join('\n');
    expect(text).toMatch(/blk\.0\.attn_q\.weight\s+64x64\s+F32\s+Q5_0\s+\S+\s+\S+\s+\d+\.\d dB/);
    expect(text).toMatch(/quantized to Q4_K_M \(file type 15\)/);
    expect(text).toMatch(/tensor data 1\.12 MiB → 0\.28 MiB/);
    expect(err.join('')).toMatch(/note: blk\.0\.ffn_down\.weight: 172 columns are not a multiple of 256 \(Q4_K\); using F16/);
    expect(existsSync(join(dir, 'r.gguf'))).toBe(true);
  });
});
