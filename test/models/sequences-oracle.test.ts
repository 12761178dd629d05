// Batched decode against llama.cpp. On stories260K Q4_0 a batched step's Q4_0
// products take x quantized to 8 bits (matmul_q4_0_q8.wgsl), as llama.cpp's
// CPU backend does for every Q4_0 product: two sequences with different
// prompts, decoded together step after step, each give llama.cpp's greedy ids
// for its prompt, or first part at a near-tie of llama.cpp's logits (≤ 0.3).
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { greedyAgreement, oracleGreedy, skipWithoutOracle } from '../oracle/llama-cpp.ts';
import { hasShared, sharedModel } from '../shared.ts';

const engine = await getTestEngine();
const skip = !hasShared || !engine || (await skipWithoutOracle('batched decode against llama.cpp'));

describe.skipIf(skip)('batched decode against llama.cpp', () => {
  it('stories260K Q4_0: two sequences decoded together give llama.cpp\'s ids for each (or part at a near-tie)', async () => {
    const path = sharedModel('stories260K-q4_0.gguf');
    const file = await openGguf(path);
    const model = await LlamaModel.load(engine!, file, readConfig(file), { contextLength: 128, sequences: 2 });
    await file.close();
    const prompts = [[1, 403, 407, 260, 411], [1, 365, 352, 300, 263, 310]];
    const steps = 32;
    try {
      const ids: number[][] = [];
      for (const s of [0, 1]) ids.push([await model.forwardArgmax(prompts[s], 0, { seq: s })]);
      for (let i = 1; i < steps; i++) {
        const r = await model.forwardBatch([0, 1].map((s) => ({ seq: s, tokens: [ids[s][i - 1]], pos: prompts[s].length + i - 1 })));
        for (const s of [0, 1]) ids[s].push(r.ids[s]);
      }
      for (const s of [0, 1]) {
        const theirs = await oracleGreedy(path, prompts[s], steps, { kvType: model.kvF16 ? 'f16' : 'f32', contextSize: 128 });
        const agree = greedyAgreement(ids[s], theirs);
        console.log(`stories260K Q4_0 batched, sequence ${s}: ${agree.why}`);
        expect(agree.ok, `sequence ${s}: ${agree.why}`).toBe(true);
      }
    } finally {
      model.dispose();
    }
  });
});
