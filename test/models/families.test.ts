// Every family qllm runs, on tiny synthetic models (make-model --arch, wide
// logits) in each weight format: 32 greedy steps on the f16 path and on the
// f32 path must give llama.cpp's ids, or first differ at a near-tie (llama.cpp's
// own logit gap ≤ 0.3). Where they differ beyond that, the float64 reference
// arbitrates: llama.cpp's quantized products round activations to 8 bits, so
// on random K-quant blocks it can drift by whole logits; the test passes only
// when the reference backs qllm's id, and logs which side it backed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { ARCHES, type MakeModelOptions, makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { disposeOracle, greedyAgreement, oracleGreedy, skipWithoutOracle } from '../oracle/llama-cpp.ts';
import { expectAgreement } from './agreement.ts';
import { maxAbsDiff, nmse } from './gpu-util.ts';
import { loadRefWeights, ReferenceModel } from './reference.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-families-'));
const probe = await getTestEngine();
const skip = !probe || (await skipWithoutOracle('test/models/families.test.ts'));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await disposeOracle();
});

const TYPES = ['f16', 'q8_0', 'q4_0', 'q4_k_m'] as const;
const STEPS = 32;
const CTX = 64;
const CASES = ARCHES.flatMap((arch) => TYPES.map((type) => ({ arch, type })));
/** RoPE variants, F32 weights: YaRN, Llama 3's rope_freqs, LongRoPE's long factors (the context exceeds the original). */
const ROPES: { name: string; model: Omit<MakeModelOptions, 'out'> }[] = [
  { name: 'llama, YaRN ×4', model: { arch: 'llama', init: 'wide', ropeScaling: 'yarn', ropeFactor: 4 } },
  { name: 'llama, rope_freqs (Llama 3)', model: { arch: 'llama', init: 'wide', ropeFreqs: true } },
  { name: 'qwen2, YaRN ×4', model: { arch: 'qwen2', ropeScaling: 'yarn', ropeFactor: 4 } },
  { name: 'phi3, LongRoPE (long factors)', model: { arch: 'phi3', ropeScaling: 'longrope' } },
];

describe.skipIf(skip)('every family agrees with llama.cpp over 32 greedy steps', () => {
  it.each(CASES)('$arch $type', async ({ arch, type }) => {
    const path = join(dir, `${arch}-${type}.gguf`);
    await makeModel({ out: path, arch, type, seed: 11 });
    await expectAgreement(path, `${arch} ${type}`, { ctx: CTX, steps: STEPS, ref: { ggmlCpuGelu: true } });
  });
});

describe.skipIf(skip)('RoPE scaling variants: GPU logits vs the float64 reference, greedy ids vs llama.cpp', () => {
  // 256: the context node-llama-cpp rounds up to, so both sides pick the same LongRoPE factors.
  const ctx = 256;
  it.each(ROPES)('$name', async ({ name, model: m }) => {
    const path = join(dir, `${name.replace(/\W+/g, '_')}.gguf`);
    await makeModel({ out: path, type: 'f32', seed: 5, ...m });
    const file = await openGguf(path);
    const config = readConfig(file);
    const engine = (await getTestEngine({ noF16: true }))!;
    const model = await LlamaModel.load(engine, file, config, { contextLength: ctx, maxBatch: 16 });
    const ref = new ReferenceModel(config, await loadRefWeights(file), { contextLength: ctx });
    await file.close();
    const V = model.vocab;
    try {
      // Positions well past YaRN's and LongRoPE's original contexts (64 here): prefill 40 tokens at 100.
      const prompt = Array.from({ length: 40 }, (_, i) => (i * 53 + 7) % V);
      await model.forward(Array.from({ length: 100 }, (_, i) => (i * 31 + 3) % V), 0);
      ref.run(Array.from({ length: 100 }, (_, i) => (i * 31 + 3) % V), 0);
      const got = await model.forward(prompt, 100, { allLogits: true });
      const want = ref.run(prompt, 100);
      let worst = 0, diff = 0, scale = 0;
      for (let t = 0; t < prompt.length; t++) {
        const g = got.subarray(t * V, (t + 1) * V);
        worst = Math.max(worst, nmse(g, want[t]));
        diff = Math.max(diff, maxAbsDiff(g, want[t]));
        scale = Math.max(scale, ...want[t].map(Math.abs));
      }
      console.log(`${name}: NMSE ${worst.toExponential(2)}, max |diff| ${diff.toExponential(2)} of |logits| ${scale.toFixed(1)}`);
      expect(worst).toBeLessThan(1e-9);
      expect(scale).toBeGreaterThan(1);
    } finally {
      model.dispose();
    }
    // And llama.cpp decodes the same ids from a prompt that reaches past the original context.
    const prompt = [1, ...Array.from({ length: 90 }, (_, i) => (i * 29 + 5) % V)];
    const f = await openGguf(path);
    const m2 = await LlamaModel.load(engine, f, config, { contextLength: ctx, maxBatch: 32 });
    const ours: number[] = [];
    try {
      let pos = 0, next = prompt;
      for (let s = 0; s < 16; s++) {
        const id = await m2.forwardArgmax(next, pos);
        ours.push(id);
        pos += next.length;
        next = [id];
      }
    } finally {
      m2.dispose();
      await f.close();
    }
    const theirs = await oracleGreedy(path, prompt, 16, { kvType: 'f32', contextSize: ctx });
    const agree = greedyAgreement(ours.slice(0, theirs.ids.length), theirs);
    console.log(`${name}: ${agree.why}`);
    expect(agree.ok, agree.why).toBe(true);
  });
});
