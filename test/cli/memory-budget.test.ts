// `qllm run --memory-budget`: a budget the model cannot fit is refused before
// loading, in one line naming the context that fits; one that fits runs.
import { describe, expect, it } from 'vitest';
import { hasShared, sharedModel } from '../shared.ts';
import { qllm } from './helpers.ts';

describe.skipIf(!hasShared)('qllm run --memory-budget', () => {
  it('refuses 2.5M for stories260K at 2048 tokens with the context that fits; runs at that context, and with 16M', async () => {
    const args = ['run', sharedModel('stories260K.gguf'), '-p', 'Once', '-n', '2', '--temp', '0', '--no-stats'];
    const tight = await qllm([...args, '--memory-budget', '2.5M']);
    expect(tight.code).toBe(1);
    const line = tight.stderr.split('\n').find((l) => l.startsWith('qllm: '));
    expect(line).toMatch(/^qllm: loading needs [\d.]+ MiB of GPU memory at contextLength 2048 .*over the memoryBudget of 2\.5 MiB: lower contextLength \(-c\) to \d+ or less/);
    const fit = /to (\d+) or less/.exec(line!)![1];
    expect((await qllm([...args, '--memory-budget', '2.5M', '-c', fit])).code).toBe(0);
    expect((await qllm([...args, '--memory-budget', '16M'])).code).toBe(0);
    const bad = await qllm([...args, '--memory-budget', '-1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/qllm: --memory-budget -1 is not a size/);
  });
});
