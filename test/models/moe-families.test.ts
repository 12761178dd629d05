// Mixture-of-experts families (qwen3moe, Mixtral-style llama, OLMoE, gpt-oss,
// qwen2moe) on tiny synthetic models (make-model --arch, 4 or 8 experts, top-2 to 4) with
// Q8_0, Q4_K and MXFP4 experts:
// - the GPU forward pass equals the float64 reference (reference-moe.ts) on
//   prefill (pairs grouped by expert, the grouped matmul) and decode (the k
//   chosen experts' matvec with the weighted sum fused), on the CPU and GPU
//   kernel configurations, and in batched decode (several sequences a step);
//   gpt-oss adds attention sinks, a sliding window on even layers, biases and
//   its clamped SwiGLU; qwen2moe adds a shared expert scaled by a sigmoid gate
//   (its products are dense, so batched decode runs them as ordinary matmuls);
// - 24 greedy steps give llama.cpp's ids, or first differ at a near-tie (its
//   logit gap ≤ 0.3), or beyond one where the float64 reference backs qllm.
//   A MoE model turns small differences into discrete ones: llama.cpp rounds
//   activations to 8 bits for its quantized products, and where two experts'
//   router logits are close that can pick another expert and move the logits
//   by whole units. The test logs which side the reference backed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { MOE_ARCHES, makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { disposeOracle, greedyAgreement, oracleGreedy, skipWithoutOracle } from '../oracle/llama-cpp.ts';
import { expectAgreement } from './agreement.ts';
import { nmse } from './gpu-util.ts';
import { argmax, loadRefWeights, ReferenceModel } from './reference.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-moe-'));
const probe = await getTestEngine();
// f32 KV caches for the reference comparison (an f16 cache alone moves the logits by ~1e-6).
const cpuF32 = await getTestEngine({ noF16: true });
const gpuF32 = await getTestEngine({ noF16: true, tuning: 'gpu' });
const noOracle = !probe || (await skipWithoutOracle('test/models/moe-families.test.ts'));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await disposeOracle();
});

const TYPES = ['q8_0', 'q4_k', 'mxfp4_moe'] as const;
const CASES = MOE_ARCHES.flatMap((arch) => TYPES.map((type) => ({ arch, type })));
const STEPS = 24;
const CTX = 64;

const made = new Map<string, Promise<string>>();
/** The tiny model of arch and type (written once per file run). */
function model(arch: string, type: string): Promise<string> {
  const path = join(dir, `${arch}-${type}.gguf`);
  if (!made.has(path)) made.set(path, makeModel({ out: path, arch, type, seed: 11 }).then(() => path));
  return made.get(path)!;
}

describe.skipIf(!cpuF32 || !gpuF32)('MoE forward pass = the float64 reference', () => {
  it.each(CASES)('$arch $type: prefill (grouped by expert) and decode, CPU and GPU kernels', async ({ arch, type }) => {
    const file = await openGguf(await model(arch, type));
    try {
      const config = readConfig(file);
      const ref = new ReferenceModel(config, await loadRefWeights(file), { contextLength: CTX });
      const V = config.vocabSize;
      const prompt = Array.from({ length: 12 }, (_, i) => (i * 53 + 7) % V);
      const want = ref.run(prompt, 0);
      const steps: number[] = [];
      const wantSteps: Float64Array[] = [];
      for (let s = 0, pos = prompt.length, id = argmax(want.at(-1)!); s < 6; s++, pos++) {
        steps.push(id);
        wantSteps.push(ref.step(id, pos));
        id = argmax(wantSteps.at(-1)!);
      }
      for (const e of [cpuF32!, gpuF32!]) {
        const m = await LlamaModel.load(e, file, config, { contextLength: CTX, maxBatch: 16 });
        try {
          const got = await m.forward(prompt, 0, { allLogits: true });
          let pre = 0, dec = 0;
          for (let t = 0; t < prompt.length; t++) pre = Math.max(pre, nmse(got.subarray(t * V, (t + 1) * V), want[t]));
          for (const [s, id] of steps.entries()) dec = Math.max(dec, nmse(await m.forward([id], prompt.length + s), wantSteps[s]));
          console.log(`${arch} ${type} ${e.cpuTuning ? 'CPU' : 'GPU'} kernels: NMSE prefill ${pre.toExponential(2)}, decode ${dec.toExponential(2)}`);
          expect(pre).toBeLessThan(1e-9);
          expect(dec).toBeLessThan(1e-9);
        } finally {
          m.dispose();
        }
      }
    } finally {
      await file.close();
    }
  });
});

describe.skipIf(!cpuF32 || !gpuF32)('MoE in batched decode (one token of each of 3 sequences per step) = the float64 reference per sequence', () => {
  it.each(['qwen3moe', 'gpt-oss', 'qwen2moe'])('%s q8_0 (gpt-oss: attention sinks read the per-token sequence table; qwen2moe: the shared expert)', async (arch) => {
    const file = await openGguf(await model(arch, 'q8_0'));
    try {
      const config = readConfig(file);
      const w = await loadRefWeights(file);
      const V = config.vocabSize;
      const prompts = [5, 9, 3].map((n, s) => Array.from({ length: n }, (_, i) => (i * 31 + 17 * s + 5) % V));
      for (const e of [cpuF32!, gpuF32!]) {
        const m = await LlamaModel.load(e, file, config, { contextLength: CTX, maxBatch: 16, sequences: 3 });
        const refs = prompts.map(() => new ReferenceModel(config, w, { contextLength: CTX }));
        try {
          const next: number[] = [];
          for (const [s, p] of prompts.entries()) {
            next.push(argmax(await m.forward(p, 0, { seq: s })));
            refs[s].run(p, 0);
          }
          let worst = 0;
          for (let step = 0; step < 4; step++) {
            // A row's input as one token and as a run of tokens (forwardBatch takes rows of several too).
            const rows = prompts.map((p, s) => ({ seq: s, token: next[s], tokens: [next[s]], pos: p.length + step, logits: true }));
            const got = await m.forwardBatch(rows);
            rows.forEach((r, s) => {
              const want = refs[s].step(r.token, r.pos);
              worst = Math.max(worst, nmse(got.logits[s]!, want));
              next[s] = argmax(want);
            });
          }
          console.log(`${arch} batched, ${e.cpuTuning ? 'CPU' : 'GPU'} kernels: NMSE ${worst.toExponential(2)}`);
          expect(worst).toBeLessThan(1e-9);
        } finally {
          m.dispose();
        }
      }
    } finally {
      await file.close();
    }
  });
});

describe.skipIf(noOracle)(`MoE families agree with llama.cpp over ${STEPS} greedy steps`, () => {
  it.each(CASES)('$arch $type', async ({ arch, type }) => {
    await expectAgreement(await model(arch, type), `${arch} ${type}`, { ctx: CTX, steps: STEPS });
  });
});

describe.skipIf(noOracle)('gpt-oss with YaRN ×4 (as the real file: ×32 from 4096), F32 weights, positions past the original context', () => {
  it('16 greedy ids equal llama.cpp\'s', async () => {
    const path = join(dir, 'gpt-oss-yarn.gguf');
    await makeModel({ out: path, arch: 'gpt-oss', type: 'f32', seed: 5, ropeScaling: 'yarn', ropeFactor: 4 });
    const file = await openGguf(path);
    const config = readConfig(file);
    const prompt = [1, ...Array.from({ length: 90 }, (_, i) => (i * 29 + 5) % config.vocabSize)];
    const m = await LlamaModel.load(cpuF32!, file, config, { contextLength: 256, maxBatch: 32 });
    const ours: number[] = [];
    try {
      for (let s = 0, pos = 0, next = prompt; s < 16; s++, pos += next.length, next = [ours.at(-1)!]) ours.push(await m.forwardArgmax(next, pos));
    } finally {
      m.dispose();
      await file.close();
    }
    const agree = greedyAgreement(ours, await oracleGreedy(path, prompt, 16, { kvType: 'f32', contextSize: 256 }));
    console.log(`gpt-oss YaRN: ${agree.why}`);
    expect(agree.ok, agree.why).toBe(true);
  });
});
