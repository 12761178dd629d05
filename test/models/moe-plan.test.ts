// MoE models in the memory plan, the load's refusal and `qllm info`:
// - planMemory = what LlamaModel.load allocates (weights, KV and staging to
//   the byte; activations and uniforms within a few KiB, never under), expert
//   tensors and the router's buffers included, on both kernel configurations;
// - expert tensors split over bindings by whole experts, planned = uploaded;
// - a budget one byte under the plan is refused before any buffer is made;
// - info's active parameters: every tensor but the experts a token skips (a
//   shared expert runs for every token: all of it is active).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { destroyWeight, uploadTensor } from '../../src/gpu/weights.ts';
import { describeModel } from '../../src/info.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { checkModel } from '../../src/models/llama-tensors.ts';
import { estimateMemory, planMemory } from '../../src/models/memory-plan.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-moe-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cpu = await getTestEngine();
const gpuTuned = await getTestEngine({ tuning: 'gpu' });

const MODELS = [
  { arch: 'qwen3moe', type: 'mxfp4_moe' },
  { arch: 'mixtral', type: 'q4_k' },
  { arch: 'olmoe', type: 'q8_0' },
  { arch: 'gpt-oss', type: 'mxfp4_moe' },
  { arch: 'qwen2moe', type: 'q4_k' },
] as const;

async function made(arch: string, type: string): Promise<string> {
  const out = join(dir, `${arch}-${type}.gguf`);
  await makeModel({ out, arch, type, seed: 3 });
  return out;
}

describe.skipIf(!cpu || !gpuTuned)('MoE memory plan = LlamaModel.load', () => {
  it.each(MODELS)('$arch $type, CPU and GPU kernel configurations', async ({ arch, type }) => {
    const file = await openGguf(await made(arch, type));
    try {
      const c = readConfig(file);
      for (const e of [cpu!, gpuTuned!]) {
        const before = e.memory().byCategory;
        const m = await LlamaModel.load(e, file, c, { contextLength: 96 });
        const after = e.memory().byCategory;
        m.dispose();
        const plan = estimateMemory(file, 96, { kvF16: e.f16, splitAttention: !e.cpuTuning, maxBindingBytes: Math.min(e.limits.maxStorageBufferBindingSize, e.limits.maxBufferSize) });
        expect(plan.weights).toBe(after.weights - before.weights);
        expect(plan.kv).toBe(after.kv - before.kv);
        expect(plan.staging).toBe(after.staging - before.staging);
        for (const k of ['activations', 'other'] as const) {
          const actual = after[k] - before[k];
          expect(plan[k]).toBeGreaterThanOrEqual(actual);
          expect(plan[k] - actual).toBeLessThan(16 << 10);
        }
        // The experts and the router's buffers are there by name.
        const labels = plan.buffers.map((b) => b.label);
        for (const l of ['blk.0.ffn_gate_exps.weight', 'blk.1.ffn_down_exps.weight', 'blk.0.ffn_gate_inp.weight', 'moe routes', 'moe logits', 'moe gate|up', 'moe pairs']) expect(labels).toContain(l);
        if (arch === 'gpt-oss') for (const l of ['blk.1.attn_sinks.weight', 'blk.1.ffn_down_exps.bias', 'blk.0.ffn_gate_inp.bias']) expect(labels).toContain(l);
        // The shared expert: gate|up as one weight, down, the gate vector, and its two buffers.
        if (arch === 'qwen2moe') for (const l of ['blk.0.ffn_gate_shexp.weight+1', 'blk.1.ffn_down_shexp.weight', 'blk.1.ffn_gate_inp_shexp.weight', 'moe shared gate|up', 'moe shared out']) expect(labels).toContain(l);
      }
    } finally {
      await file.close();
    }
  });

  it('splits an expert tensor over bindings by whole experts, as planned', async () => {
    const file = await openGguf(await made('qwen3moe', 'q8_0'));
    try {
      const c = readConfig(file);
      const t = checkModel(file, c, 64);
      const gate = t.layers[0].gate; // [8 experts, 64 rows, 64 cols] Q8_0: 4352 B per expert
      const perExpert = gate.nBytes / 8;
      const limit = 3 * perExpert + 100; // 3 experts per part: parts of 3, 3, 2
      const w = await uploadTensor(cpu!, file, gate, { maxBindingBytes: limit });
      try {
        expect(w.parts.map((p) => p.rows / 64)).toEqual([3, 3, 2]);
        const plan = planMemory(c, t, { contextLength: 64, maxBindingBytes: limit });
        expect(plan.buffers.find((b) => b.label === gate.name)!.bytes).toBe(w.bytes);
      } finally {
        destroyWeight(cpu!, w);
      }
    } finally {
      await file.close();
    }
  });

  it('refuses a budget one byte under the plan before making any buffer', async () => {
    const path = await made('mixtral', 'q8_0');
    const file = await openGguf(path);
    try {
      const c = readConfig(file);
      const plan = estimateMemory(file, 64, { kvF16: cpu!.f16, splitAttention: false });
      const tight = await getTestEngine({ memoryBudget: plan.total - 1 });
      const err = await LlamaModel.load(tight!, file, c, { contextLength: 64 }).catch((x) => x);
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toMatch(/^loading needs [\d.]+ KiB of GPU memory at contextLength 64 \(weights [\d.]+ KiB, /);
      expect(tight!.memory().total).toBe(0);
      const enough = await getTestEngine({ memoryBudget: plan.total });
      (await LlamaModel.load(enough!, file, c, { contextLength: 64 })).dispose();
    } finally {
      await file.close();
    }
  });
});

describe('qllm info: total and active parameters', () => {
  it.each([
    ['qwen3moe', 8, 2],
    ['olmoe', 8, 3],
    ['gpt-oss', 8, 4],
    ['qwen2moe', 8, 4],
  ] as const)('%s: top-%i… counts k/E of every expert tensor', async (arch, E, k) => {
    const file = await openGguf(await made(arch, 'q8_0'));
    try {
      const r = describeModel(file);
      // gpt-oss's per-expert biases count k/E too.
      const experts = file.tensors.filter((t) => t.name.endsWith('_exps.weight') || t.name.endsWith('_exps.bias'));
      expect(experts.length).toBe(arch === 'gpt-oss' ? 12 : 6); // gate, up, down (and their biases) × 2 layers
      const expertParams = experts.reduce((s, t) => s + t.nElements, 0);
      expect(r.experts).toEqual({ count: E, used: k });
      expect(r.active_parameters).toBe(r.parameters - (expertParams * (E - k)) / E);
      expect(r.active_weight_bytes).toBeLessThan(r.memory.weights_stored_bytes);
      expect(r.family.quirks).toContain(`MoE: top-${k} of ${E} experts`);
      if (arch === 'qwen2moe') {
        // The shared expert is none of the expert tensors, so the formula above counts all of it active; the quirks name it.
        const shared = file.tensors.filter((t) => t.name.includes('_shexp.'));
        expect(shared.length).toBe(8); // gate_inp, gate, up, down × 2 layers
        expect(shared.filter((t) => experts.includes(t))).toEqual([]);
        expect(r.family.quirks).toContain('softmax gating, plus a shared expert (FFN 96) gated by a sigmoid');
      }
    } finally {
      await file.close();
    }
  });

  it('a dense model: active = total, no experts', async () => {
    const out = join(dir, 'qwen3.gguf');
    await makeModel({ out, arch: 'qwen3', type: 'q8_0', seed: 3 });
    const file = await openGguf(out);
    try {
      const r = describeModel(file);
      expect(r.experts).toBeNull();
      expect(r.active_parameters).toBe(r.parameters);
      expect(r.active_weight_bytes).toBe(r.memory.weights_stored_bytes);
    } finally {
      await file.close();
    }
  });
});
