// Every output type of `qllm quantize` on stories260K (../shared) loads and
// generates on the GPU, and its greedy text starts like the F32 model's.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model-api.ts';
import { quantizeFile } from '../../src/quantize/quantize-file.ts';
import { hasShared, sharedModel } from '../shared.ts';

async function greedy(path: string, n: number): Promise<number[]> {
  const m = await loadModel(path, { contextLength: 64 });
  try {
    const ids: number[] = [];
    for await (const t of m.generate('Once upon a time', { temperature: 0, maxTokens: n })) if (t.tokenId >= 0) ids.push(t.tokenId);
    return ids;
  } finally {
    m.dispose();
  }
}

describe.skipIf(!hasShared)('models written by qllm quantize run on the GPU', () => {
  const types = ['f16', 'bf16', 'q8_0', 'q5_1', 'q5_0', 'q4_1', 'q4_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_k_s', 'q3_k_m', 'q2_k', 'iq4_nl'];
  it.each(types)('%s', async (type) => {
    const dir = await mkdtemp(join(tmpdir(), 'qllm-q-'));
    const out = join(dir, `stories260K-${type}.gguf`);
    await quantizeFile(sharedModel('stories260K.gguf'), out, type);
    const ref = await greedy(sharedModel('stories260K.gguf'), 12);
    const ids = await greedy(out, 12);
    expect(ids).toHaveLength(12);
    // The first tokens (", there was a") are confident enough to survive any of these types.
    expect(ids.slice(0, 3)).toEqual(ref.slice(0, 3));
  });
});
