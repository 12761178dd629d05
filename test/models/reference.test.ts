// The float64 reference forward reproduces llama.cpp's greedy decode of
// stories260K (F32 weights, F32 KV cache) token for token.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { hasShared, sharedModel, sharedRef } from '../shared.ts';
import { ReferenceLlama, argmax, loadRefWeights } from './reference.ts';

interface RefJson { prompt_ids: number[]; steps: { id: number; top10: [number, string, number][] }[] }

describe.skipIf(!hasShared)('reference forward on stories260K', () => {
  it('greedy-decodes the 48 reference ids with top-10 logits within 1e-3', async () => {
    const ref = JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8')) as RefJson;
    const file = await openGguf(sharedModel('stories260K.gguf'));
    const config = readConfig(file);
    const model = new ReferenceLlama(config, await loadRefWeights(file));
    await file.close();

    let logits = model.run(ref.prompt_ids, 0).at(-1)!;
    let pos = ref.prompt_ids.length;
    const ids: number[] = [];
    let maxDiff = 0;
    for (const step of ref.steps) {
      for (const [id, , l] of step.top10) maxDiff = Math.max(maxDiff, Math.abs(logits[id] - l));
      const id = argmax(logits);
      ids.push(id);
      logits = model.step(id, pos++);
    }
    console.log(`reference: top-10 logits max |diff| over 48 steps = ${maxDiff.toExponential(2)}`);
    expect(ids).toEqual(ref.steps.map((s) => s.id));
    expect(maxDiff).toBeLessThan(1e-3);
  });
});
