// End to end on the real stories260K: the GPU model greedy-decodes llama.cpp's
// 48 reference ids, and the quantized files track the CPU reference run on
// their own dequantized weights.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { hasShared, repoRoot, sharedModel, sharedRef } from '../shared.ts';
import { nmse } from './gpu-util.ts';
import { ReferenceLlama, argmax, loadRefWeights } from './reference.ts';

interface RefJson { prompt_ids: number[]; steps: { id: number; top10: [number, string, number][] }[] }
const probe = await getTestEngine();

describe.skipIf(!hasShared || !probe)('LlamaModel on stories260K', () => {
  const ref = hasShared ? (JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8')) as RefJson) : undefined;

  it.each([false, true])('greedy decode reproduces the 48 reference ids (noF16 %s)', async (noF16) => {
    const engine = (await getTestEngine({ noF16 }))!;
    const file = await openGguf(sharedModel('stories260K.gguf'));
    const model = await LlamaModel.load(engine, file, readConfig(file), { contextLength: 128 });
    await file.close();
    try {
      const r = ref!;
      const logits = await model.forward(r.prompt_ids, 0);
      let worst = 0;
      for (const [id, , l] of r.steps[0].top10) worst = Math.max(worst, Math.abs(logits[id] - l));
      console.log(`stories260K (kv ${model.kvF16 ? 'f16' : 'f32'}): first-step top-10 max |diff| ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-2);
      expect(argmax(logits)).toBe(r.steps[0].id);

      const ids: number[] = [];
      let pos = r.prompt_ids.length;
      let id = await model.forwardArgmax(r.prompt_ids, 0);
      for (let i = 0; i < r.steps.length; i++) {
        ids.push(id);
        if (i < r.steps.length - 1) id = await model.forwardArgmax([id], pos++);
      }
      expect(ids).toEqual(r.steps.map((s) => s.id));
    } finally {
      model.dispose();
    }
  });

  // Q4_K_M falls back to Q5_0 here; it runs once the engine has that kernel.
  const quantFiles = ['stories260K-q8_0.gguf', 'stories260K-q4_0.gguf', 'stories260K-q4_k_m.gguf'];
  it.each(quantFiles)('%s tracks the CPU reference on its own weights', async (name) => {
    const engine = (await getTestEngine())!;
    const file = await openGguf(sharedModel(name));
    const missing = [...new Set(file.tensors.map((t) => t.type.name.toLowerCase()))].filter((t) => !existsSync(join(repoRoot, 'shaders', `dequant_${t}.wgsl`)));
    if (missing.length) {
      console.warn(`${name}: skipped, no GPU kernel yet for ${missing.join(', ')}`);
      await file.close();
      return;
    }
    const config = readConfig(file);
    const cpu = new ReferenceLlama(config, await loadRefWeights(file));
    const model = await LlamaModel.load(engine, file, config, { contextLength: 64 });
    await file.close();
    try {
      const prompt = ref!.prompt_ids;
      let want = cpu.run(prompt, 0).at(-1)!;
      let got = await model.forward(prompt, 0);
      let worst = nmse(got, want);
      let pos = prompt.length;
      for (let i = 0; i < 16; i++) {
        const tok = argmax(want);
        want = cpu.step(tok, pos);
        got = await model.forward([tok], pos++);
        worst = Math.max(worst, nmse(got, want));
      }
      console.log(`${name}: worst logits NMSE over 17 steps ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });
});
