// The model-family agreement check shared by families.test.ts and
// moe-families.test.ts: greedy ids of qllm's GPU forward (f16 and f32 paths)
// against llama.cpp's; where they part beyond a near-tie, the float64
// reference must back qllm.
import { expect } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { greedyAgreement, oracleGreedy } from '../oracle/llama-cpp.ts';
import { argmax, loadRefWeights, ReferenceModel } from './reference.ts';

/** The reference's greedy choice after `prefix` (prompt + the agreed ids), and its logit gap between the two candidates. */
async function arbitrate(path: string, ctx: number, prefix: number[], ours: number[], theirs: number[], at: number, refOpts: { ggmlCpuGelu?: boolean }) {
  const file = await openGguf(path);
  try {
    const ref = new ReferenceModel(readConfig(file), await loadRefWeights(file), { contextLength: ctx, ...refOpts });
    const logits = ref.run([...prefix, ...ours.slice(0, at)], 0).at(-1)!;
    const best = argmax(logits);
    return { backs: best === ours[at] ? 'qllm' : best === theirs[at] ? 'llama.cpp' : 'neither', gap: logits[ours[at]] - logits[theirs[at]] };
  } finally {
    await file.close();
  }
}

/**
 * `steps` greedy ids after a 6-token prompt (BOS + fixed ids), on the f16 and
 * the f32 path, each compared with llama.cpp at the same KV type; logs one
 * line per path and fails unless they agree or the reference backs qllm.
 */
export async function expectAgreement(path: string, name: string, o: { ctx: number; steps: number; ref?: { ggmlCpuGelu?: boolean } }): Promise<void> {
  const file = await openGguf(path);
  const config = readConfig(file);
  const tok = Tokenizer.fromConfig(config.tokenizer!);
  const V = config.vocabSize;
  const prompt = [config.tokenizer!.bosId ?? 1, ...Array.from({ length: 5 }, (_, i) => (i * 97 + 31) % V)];
  try {
    for (const noF16 of [false, true]) {
      const engine = (await getTestEngine({ noF16 }))!;
      const model = await LlamaModel.load(engine, file, config, { contextLength: o.ctx, maxBatch: 8 });
      const ours: number[] = [];
      try {
        let pos = 0, next = prompt;
        for (let s = 0; s < o.steps; s++) {
          const id = await model.forwardArgmax(next, pos);
          ours.push(id);
          if (tok.isEog(id)) break;
          pos += next.length;
          next = [id];
        }
      } finally {
        model.dispose();
      }
      const theirs = await oracleGreedy(path, prompt, o.steps, { kvType: model.kvF16 ? 'f16' : 'f32', contextSize: 256 });
      const agree = greedyAgreement(ours, theirs);
      const label = `${name} ${model.kvF16 ? 'f16' : 'f32'} path`;
      if (agree.ok) {
        console.log(`${label}: ${agree.why}`);
        continue;
      }
      const verdict = await arbitrate(path, o.ctx, prompt, ours, theirs.ids, agree.divergeAt, o.ref ?? {});
      console.log(`${label}: ${agree.why}; the float64 reference backs ${verdict.backs} (its gap qllm − llama.cpp ${verdict.gap.toFixed(3)})`);
      expect(verdict.backs, `${label}: ${agree.why}`).toBe('qllm');
    }
  } finally {
    await file.close();
  }
}
