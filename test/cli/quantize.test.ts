// `qllm quantize` through the real bin: stories260K's rows (64 and 172 wide) do
// not fit 256-element K-quant blocks, so most tensors fall back; that is one
// summary line on stderr, not one note per tensor (--report keeps those).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasShared, sharedModel } from '../shared.ts';
import { qllm } from './helpers.ts';

describe.skipIf(!hasShared)('qllm quantize notes', () => {
  it('summarises the fallback notes in one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qllm-quant-'));
    const r = await qllm(['quantize', sharedModel('stories260K.gguf'), join(dir, 'q.gguf'), 'Q4_K_M', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stderr.split('\n').filter((l) => l.startsWith('note:'));
    expect(notes).toEqual([
      'note: 36 of 48 tensors fall back to another type because their rows do not fit its blocks: 29 Q4_K → Q5_0 (64 columns), 3 Q4_K → F16 (172 columns), 2 Q6_K → Q8_0 (64 columns), 2 Q6_K → F16 (172 columns); --report lists each tensor',
    ]);
    expect(r.stdout).toMatch(/quantized to Q4_K_M/);
  });
});
