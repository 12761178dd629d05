// The guard: GPU logits of LlamaModel match the float64 CPU reference on
// synthetic tiny models, for several weight formats, with and without f16,
// with GQA, tied embeddings, multi-batch prefill and decode steps.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { GgufError, UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import type { GgufFile, TensorInfo } from '../../src/gguf/types.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { makeModel, type MakeModelOptions } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { repoRoot } from '../shared.ts';
import { maxAbsDiff, nmse } from './gpu-util.ts';
import { ReferenceLlama, argmax, loadRefWeights } from './reference.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-llama-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const probe = await getTestEngine();

/** A view of a GGUF file with one tensor hidden and/or one f32 tensor added. */
function view(f: GgufFile, o: { hide?: string; add?: { name: string; data: Float32Array } }): GgufFile {
  const added: TensorInfo[] = o.add
    ? [{ name: o.add.name, dims: [o.add.data.length], type: typeInfo(GgmlType.F32)!, nElements: o.add.data.length, nBytes: o.add.data.byteLength, offset: 0 }]
    : [];
  const tensors = [...f.tensors.filter((t) => t.name !== o.hide), ...added];
  return {
    path: f.path, version: f.version, fileSize: f.fileSize, alignment: f.alignment, dataOffset: f.dataOffset, kv: f.kv, tensors,
    tensor: (n: string) => tensors.find((t) => t.name === n),
    readTensor: async (t, s = 0, l) => (t.name === o.add?.name ? new Uint8Array(o.add.data.buffer).slice(s, s + (l ?? t.nBytes - s)) : f.readTensor(t, s, l)),
    close: () => f.close(),
  };
}

interface Case { name: string; model: Omit<MakeModelOptions, 'out'>; noF16: boolean; tied?: boolean; chunk?: number; ropeFreqs?: boolean; linear?: number; nmse: number; gpuTuning?: boolean }

// Budgets: NMSE of the logits vs the f64 reference on the dequantized weights,
// so only arithmetic precision counts (f16 KV cache and f16 dequant math add error).
const CASES: Case[] = [
  { name: 'f32, GQA 4/2', model: { type: 'f32' }, noF16: true, nmse: 1e-10 },
  { name: 'f32, GQA 4/2, f16', model: { type: 'f32' }, noF16: false, nmse: 1e-5 },
  { name: 'q8_0, GQA 8/2 (headDim 8)', model: { type: 'q8_0', heads: 8, kvHeads: 2 }, noF16: false, nmse: 1e-5 },
  { name: 'q8_0, split attention (chunks of 5), no f16', model: { type: 'q8_0' }, noF16: true, chunk: 5, nmse: 1e-10 },
  { name: 'q4_0, tied embeddings, no f16', model: { type: 'q4_0' }, noF16: true, tied: true, nmse: 1e-10 },
  { name: 'f32, rope_freqs + linear rope scaling ×4, no f16', model: { type: 'f32' }, noF16: true, ropeFreqs: true, linear: 4, nmse: 1e-10 },
  { name: 'q4_k_m mix (Q4_K + Q6_K), f16', model: { type: 'q4_k_m', layers: 2 }, noF16: false, nmse: 1e-5 },
  // The configuration real GPUs get (split matvec, split attention), run on this adapter.
  { name: 'q4_0, GPU tuning, attention chunks of 6, no f16', model: { type: 'q4_0' }, noF16: true, chunk: 6, gpuTuning: true, nmse: 1e-10 },
  { name: 'q4_k_m mix, GPU tuning, f16', model: { type: 'q4_k_m', layers: 2 }, noF16: false, gpuTuning: true, nmse: 1e-5 },
];

describe.skipIf(!probe)('LlamaModel vs the CPU reference on synthetic models', () => {
  // K-quant GPU kernels may not have landed yet: those cases wait for their shader.
  const hasShader = (c: Case) => c.model.type !== 'q4_k_m' || existsSync(join(repoRoot, 'shaders', 'dequant_q4_k.wgsl'));
  it.each(CASES)('$name', async (c) => {
    if (!hasShader(c)) {
      console.warn(`${c.name}: skipped, shaders/dequant_q4_k.wgsl is absent`);
      return;
    }
    const engine = await getTestEngine(c.gpuTuning ? { noF16: c.noF16, tuning: 'gpu' } : { noF16: c.noF16 });
    if (!engine) throw new Error('no engine');
    const path = join(dir, `${c.name.replace(/\W+/g, '_')}.gguf`);
    await makeModel({ out: path, seed: 7, std: 0.08, ...c.model });
    let file = await openGguf(path);
    if (c.tied) file = view(file, { hide: 'output.weight' });
    let config = readConfig(file);
    if (c.ropeFreqs) file = view(file, { add: { name: 'rope_freqs.weight', data: Float32Array.from({ length: config.ropeDim / 2 }, (_, i) => 1 + i * 0.7) } });
    if (c.linear) config = { ...config, ropeScaling: { ...config.ropeScaling, type: 'linear', factor: c.linear } };
    const ref = new ReferenceLlama(config, await loadRefWeights(file));
    const model = await LlamaModel.load(engine, file, config, { contextLength: 24, maxBatch: 8, attentionChunk: c.chunk ?? 0 });
    await file.close();
    expect(model.kvF16).toBe(!c.noF16);
    // One-token steps on the CPU kernels run as one dispatch per layer
    // (llama-chain.ts) wherever the subgroup attention applies.
    expect(model.chained).toBe(!c.gpuTuning && !c.chunk && config.headDim % 16 === 0);
    try {
      const V = model.vocab;
      // Prefill 13 tokens in two batches (8 + 5), every token's logits.
      const prompt = Array.from({ length: 13 }, (_, i) => (i * 37 + 11) % V);
      const got = await model.forward(prompt, 0, { allLogits: true });
      const want = ref.run(prompt, 0);
      let worstN = 0, worstD = 0, scale = 0;
      for (let t = 0; t < prompt.length; t++) {
        const g = got.subarray(t * V, (t + 1) * V);
        worstN = Math.max(worstN, nmse(g, want[t]));
        worstD = Math.max(worstD, maxAbsDiff(g, want[t]));
        scale = Math.max(scale, ...want[t].map(Math.abs));
      }
      // Decode 4 steps: last-token logits and the GPU argmax.
      let pos = prompt.length, tok = argmax(want.at(-1)!);
      for (let s = 0; s < 4; s++) {
        const w = ref.step(tok, pos);
        const g = await model.forward([tok], pos);
        worstN = Math.max(worstN, nmse(g, w));
        worstD = Math.max(worstD, maxAbsDiff(g, w));
        pos++;
        tok = argmax(w);
      }
      // forwardArgmax on a fresh position agrees with the reference's choice.
      const w = ref.step(tok, pos);
      const id = await model.forwardArgmax([tok], pos);
      const sorted = [...w].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] > 1e-3 * scale) expect(id).toBe(argmax(w));
      console.log(`${c.name}: logits |max| ${scale.toFixed(3)}, max |diff| ${worstD.toExponential(2)}, NMSE ${worstN.toExponential(2)} (budget ${c.nmse})`);
      expect(worstN).toBeLessThan(c.nmse);
      expect(worstD).toBeLessThan(1e-3 * scale);
      expect(scale).toBeGreaterThan(0.5); // the test is not vacuous: logits are far from 0
    } finally {
      model.dispose();
    }
  });

  it('rejects a prompt past the context, bad ids, and a non-llama architecture', async () => {
    const engine = (await getTestEngine())!;
    const path = join(dir, 'errors.gguf');
    await makeModel({ out: path, seed: 3, type: 'f32' });
    const file = await openGguf(path);
    const config = readConfig(file);
    const model = await LlamaModel.load(engine, file, config, { contextLength: 8, maxBatch: 4 });
    try {
      await expect(model.forward([1, 2, 3, 4, 5, 6], 3)).rejects.toThrow(new UsageError('prompt of 9 tokens does not fit the context of 8: raise contextLength (-c) or shorten the prompt'));
      await expect(model.forward([model.vocab], 0)).rejects.toThrow(UsageError);
      await expect(model.forward([], 0)).rejects.toThrow(UsageError);
      // Still usable after the refusals.
      expect((await model.forward([1, 2], 0)).length).toBe(model.vocab);
    } finally {
      model.dispose();
    }
    await expect(LlamaModel.load(engine, file, { ...config, arch: 'gpt2' }, { contextLength: 8 })).rejects.toThrow(
      new GgufError("architecture 'gpt2' is not supported: qllm runs llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3, granite, smollm3, olmo2, qwen2moe, qwen3moe, olmoe, gpt-oss (Mistral, Mixtral, SmolLM2 and TinyLlama files say 'llama')"),
    );
    const missing = view(file, { hide: 'blk.1.ffn_up.weight' });
    await expect(LlamaModel.load(engine, missing, config, { contextLength: 8 })).rejects.toThrow(/tensor blk\.1\.ffn_up\.weight is missing/);
    await file.close();
  });

  // The decode chain (one dispatch per layer, CPU kernels) runs the same
  // kernels in the same order as the step-by-step path: identical logits.
  it.each(['q4_k_m', 'q4_0', 'f32'])('a chained decode gives the logits of the step-by-step kernels, bit for bit: %s', async (type) => {
    const engine = (await getTestEngine())!;
    const path = join(dir, `chain-${type}.gguf`);
    await makeModel({ out: path, seed: 11, std: 0.08, type, layers: 2 });
    const file = await openGguf(path);
    const config = readConfig(file);
    const chained = await LlamaModel.load(engine, file, config, { contextLength: 24, maxBatch: 8 });
    const plain = await LlamaModel.load(engine, file, config, { contextLength: 24, maxBatch: 8, chains: false });
    await file.close();
    try {
      expect([chained.chained, plain.chained]).toEqual([true, false]);
      const prompt = [5, 17, 3, 99, 42, 7, 1, 64, 23];
      await chained.forward(prompt, 0);
      await plain.forward(prompt, 0);
      let tok = 2;
      for (let s = 0; s < 5; s++) {
        const a = await chained.forward([tok], prompt.length + s);
        expect(a).toEqual(await plain.forward([tok], prompt.length + s));
        tok = argmax(a);
      }
      const pos = prompt.length + 5;
      expect(await chained.forwardArgmax([tok], pos)).toBe(await plain.forwardArgmax([tok], pos));
    } finally {
      chained.dispose();
      plain.dispose();
    }
  });

  it('dispose() frees every buffer it allocated', async () => {
    const engine = (await getTestEngine())!;
    const path = join(dir, 'dispose.gguf');
    await makeModel({ out: path, seed: 5, type: 'q8_0' });
    const file = await openGguf(path);
    const before = engine.memory().total;
    const model = await LlamaModel.load(engine, file, readConfig(file), { contextLength: 16 });
    const m = model.memory();
    expect(m.weights).toBeGreaterThan(0);
    expect(m.kv).toBe(2 * 2 * 16 * 32 * (engine.f16 ? 2 : 4)); // K+V × layers × ctx × kvDim
    model.dispose();
    await file.close();
    // The matmul helpers' small uniform info buffers are not ours to free (≤ 64 B each).
    expect(engine.memory().total - before).toBeLessThan(4096);
    expect(engine.memory().byCategory.kv).toBe(0);
  });

  it('greedy steps queued ahead (GPU tuning) give the ids of step-by-step decoding; a step the caller does not take leaves no trace', async () => {
    const engine = (await getTestEngine({ tuning: 'gpu' }))!;
    const path = join(dir, 'ahead.gguf');
    await makeModel({ out: path, seed: 9, type: 'q4_0', std: 0.08 });
    const file = await openGguf(path);
    const model = await LlamaModel.load(engine, file, readConfig(file), { contextLength: 16, maxBatch: 4 });
    await file.close();
    try {
      const prompt = [5, 17, 3, 40, 9, 22]; // two batches of 4 + 2
      const decode = async (next: boolean) => {
        const ids = [await model.forwardArgmax(prompt, 0, { next })];
        for (let i = 0; i < 9; i++) ids.push(await model.forwardArgmax([ids.at(-1)!], prompt.length + i, { next: next && i < 8 }));
        return ids;
      };
      // Record submits (s) and readback maps (m): queued ahead, a step is submitted before the previous one is read.
      const log: string[] = [];
      const q = engine.device.queue, submit = q.submit.bind(q), proto = GPUBuffer.prototype, map = proto.mapAsync;
      q.submit = (cbs) => {
        log.push('s');
        submit(cbs);
      };
      proto.mapAsync = function (this: GPUBuffer, ...a: Parameters<GPUBuffer['mapAsync']>) {
        log.push('m');
        return map.apply(this, a);
      };
      let plain: number[], ahead: number[], logPlain: string, logAhead: string;
      try {
        plain = await decode(false);
        logPlain = log.splice(0).join('');
        ahead = await decode(true);
        logAhead = log.splice(0).join('');
      } finally {
        q.submit = submit;
        proto.mapAsync = map;
      }
      expect(ahead).toEqual(plain); // the last step (pos 15 of 16) queues nothing past the context
      expect(logPlain).toBe(`ssm${'sm'.repeat(9)}`);
      expect(logAhead).toBe(`sssm${'sm'.repeat(8)}m`);
      // Queue a step ahead, then feed a different token at that position: the
      // result matches feeding it without anything queued.
      const other = (plain[1] + 1) % model.vocab;
      await model.forwardArgmax(prompt, 0, { next: true });
      const after = await model.forward([other], prompt.length);
      await model.forwardArgmax(prompt, 0);
      expect(await model.forward([other], prompt.length)).toEqual(after);
      // And after an ignored step, a queued one at another position is not taken either.
      await model.forwardArgmax(prompt, 0, { next: true });
      expect(await model.forwardArgmax([plain[0]], prompt.length + 1)).toBe(await model.forwardArgmax([plain[0]], prompt.length + 1));
    } finally {
      model.dispose();
    }
  });
});
