// The memory plan against what LlamaModel.load really allocates: per category
// never less (the loader refuses on the plan, so an under-estimate would let a
// load fail halfway), and within a few KiB of slack; and its refusals.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { GpuError, UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import type { Engine } from '../../src/gpu/engine.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import { checkModel } from '../../src/models/llama-tensors.ts';
import { checkMemoryPlan, estimateMemory, type MemoryPlan, parseByteSize, planMemory } from '../../src/models/memory-plan.ts';
import { type KvType, kvCacheBytes } from '../../src/models/kv-cache.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { hasShared, sharedModel } from '../shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cpu = await getTestEngine();
const gpuTuned = await getTestEngine({ tuning: 'gpu' });

/** Loads `path` on `e` and returns the plan for the same settings beside the bytes the load added. */
async function planVsActual(e: Engine, path: string, ctx: number, kvType?: KvType, sequences?: number) {
  const file = await openGguf(path);
  try {
    const c = readConfig(file);
    const before = e.memory().byCategory;
    const m = await LlamaModel.load(e, file, c, { contextLength: ctx, kvType, sequences });
    const after = e.memory().byCategory;
    m.dispose();
    const plan = estimateMemory(file, ctx, { kvF16: e.f16, kvType, sequences, splitAttention: !e.cpuTuning, maxBindingBytes: Math.min(e.limits.maxStorageBufferBindingSize, e.limits.maxBufferSize) });
    const actual = { weights: after.weights - before.weights, kv: after.kv - before.kv, activations: after.activations - before.activations, other: after.other - before.other, staging: after.staging - before.staging };
    return { plan, actual };
  } finally {
    await file.close();
  }
}

function expectBound(plan: MemoryPlan, actual: Record<'weights' | 'kv' | 'activations' | 'other' | 'staging', number>) {
  expect(plan.weights).toBe(actual.weights); // uploads are planned part by part
  expect(plan.kv).toBe(actual.kv);
  expect(plan.staging).toBe(actual.staging);
  for (const k of ['activations', 'other'] as const) {
    expect(plan[k]).toBeGreaterThanOrEqual(actual[k]);
    expect(plan[k] - actual[k]).toBeLessThan(16 << 10);
  }
}

describe.skipIf(!cpu || !gpuTuned)('planMemory matches LlamaModel.load', () => {
  const models: [string, () => Promise<string>][] = [
    ...(hasShared ? ['stories260K', 'stories260K-q4_k_m', 'stories260K-q8_0'].map((n) => [n, async () => sharedModel(`${n}.gguf`)] as [string, () => Promise<string>]) : []),
    ...(['qwen2', 'gemma2', 'phi3', 'olmo2'] as const).map((arch) => [`${arch} q8_0`, async () => {
      const out = join(dir, `${arch}.gguf`);
      await makeModel({ out, arch, type: 'q8_0', seed: 3 });
      return out;
    }] as [string, () => Promise<string>]),
  ];
  it.each(models)('%s, CPU and GPU kernel configurations', async (_name, make) => {
    const path = await make();
    for (const e of [cpu!, gpuTuned!]) {
      const { plan, actual } = await planVsActual(e, path, 96);
      expectBound(plan, actual);
    }
  });
});

describe.skipIf(!cpu || !gpuTuned || !hasShared)('several sequences (LoadOptions.parallel): planned = allocated', () => {
  it.each([['f16', 3], ['q8_0', 4], ['f16', 64]] as const)('stories260K, kv %s, %d sequences, CPU and GPU kernel configurations', async (kvType, sequences) => {
    const file = await openGguf(sharedModel('stories260K.gguf'));
    const c = readConfig(file);
    await file.close();
    for (const e of [cpu!, gpuTuned!]) {
      const { plan, actual } = await planVsActual(e, sharedModel('stories260K.gguf'), 80, kvType === 'f16' && !e.f16 ? 'f32' : kvType, sequences);
      expectBound(plan, actual);
      expect(actual.kv).toBe(kvCacheBytes(plan.kvType, c, 80 * sequences)); // each sequence its own contextLength of cache
    }
  });
});

describe.skipIf(!cpu || !gpuTuned)('KV cache types: planned = allocated, and the block types\' bytes beside f16\'s', () => {
  // Odd context lengths: a cache whose d plane ends mid-word is rounded up like any buffer.
  const models: [string, () => Promise<string>][] = [
    ...(hasShared ? [['stories260K (kvDim 32: one block a row)', async () => sharedModel('stories260K.gguf')] as [string, () => Promise<string>]] : []),
    ['llama GQA 6/2, head 48 (blocks span heads)', async () => {
      const out = join(dir, 'kv48.gguf');
      await makeModel({ out, arch: 'llama', heads: 6, kvHeads: 2, headDim: 48, type: 'q8_0', seed: 3 });
      return out;
    }],
  ];
  it.each(models)('%s, CPU and GPU kernel configurations', async (_name, make) => {
    const path = await make();
    const file = await openGguf(path);
    const c = readConfig(file);
    await file.close();
    for (const e of [cpu!, gpuTuned!]) {
      for (const ctx of [97, 2 * 97]) {
        const kv: Partial<Record<KvType, number>> = {};
        for (const t of ['f32', 'f16', 'q8_0', 'q4_0'] as KvType[]) {
          const { plan, actual } = await planVsActual(e, path, ctx, t);
          expectBound(plan, actual);
          expect(plan.kvType).toBe(t);
          expect(actual.kv).toBe(kvCacheBytes(t, c, ctx)); // what info and the run stats report
          kv[t] = actual.kv;
        }
        expect(kv.f32! / kv.f16!).toBe(2);
        expect(kv.q8_0! / kv.f16!).toBeLessThanOrEqual(0.55);
        expect(kv.q4_0! / kv.f16!).toBeLessThanOrEqual(0.3);
        // ggml's 34 and 18 bytes per 32 values, to the word the engine rounds each buffer to.
        expect(Math.abs(kv.q8_0! - (kv.f16! * 34) / 64)).toBeLessThanOrEqual(2 * c.nLayers * 2);
        expect(Math.abs(kv.q4_0! - (kv.f16! * 18) / 64)).toBeLessThanOrEqual(2 * c.nLayers * 2);
      }
    }
  });
});

describe.skipIf(!hasShared)('checkMemoryPlan', () => {
  it('refuses a buffer over the binding limit by its name, with the largest context that fits, and a budget with its parts', async () => {
    const file = await openGguf(sharedModel('stories260K.gguf'));
    try {
      const c = readConfig(file);
      const t = checkModel(file, c, 2048);
      const at = (n: number) => planMemory(c, t, { contextLength: n, kvF16: true, splitAttention: false });
      // KV: 4 KV heads × 8 dims × 2 bytes = 64 B per position and layer; rope table: 8 × 4 = 32 B per position.
      // (The logits, 64 tokens × 512 × 4 B = 128 KiB, fit.)
      const limits = { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 150_000 };
      expect(() => checkMemoryPlan(at(4096), limits, Number.POSITIVE_INFINITY, at)).toThrow(GpuError);
      expect(() => checkMemoryPlan(at(4096), limits, Number.POSITIVE_INFINITY, at)).toThrow(/^the k cache \(one of 5\) needs 256\.0 KiB at contextLength 4096, over this GPU's maxStorageBufferBindingSize of 146\.5 KiB: lower contextLength \(-c\) to 2343 or less$/);
      expect(() => checkMemoryPlan(at(2343), limits, Number.POSITIVE_INFINITY, at)).not.toThrow();
      expect(() => checkMemoryPlan(at(2344), limits, Number.POSITIVE_INFINITY, at)).toThrow(GpuError);
      const p = at(2048);
      expect(() => checkMemoryPlan(p, undefined, p.total - 1, at)).toThrow(UsageError);
      expect(() => checkMemoryPlan(p, undefined, p.total, at)).not.toThrow();
      // The logits (a batch of rows) do not grow with the context: then the advice is a smaller model.
      expect(() => checkMemoryPlan(at(512), { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 100_000 }, Number.POSITIVE_INFINITY, at)).toThrow(/the logits needs 128\.0 KiB .*: this model is too large for this GPU; use a smaller model$/);
    } finally {
      await file.close();
    }
  });
});

describe('parseByteSize', () => {
  it.each([
    ['3000000', 3000000], ['2G', 2 ** 31], ['2g', 2 ** 31], ['1.5GiB', 1.5 * 2 ** 30], ['512M', 2 ** 29], ['512MB', 2 ** 29], ['64k', 65536], ['1T', 2 ** 40], [' 8 M ', 2 ** 23],
  ])('%s = %d bytes', (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(['', 'x', '-1', '0', '2X', '1e9', 'NaN', 'Infinity', '2 G B'])('refuses %j in one line naming the flag', (text) => {
    expect(() => parseByteSize(text, '--memory-budget')).toThrow(UsageError);
    expect(() => parseByteSize(text, '--memory-budget')).toThrow(/^--memory-budget .* is not a size: give bytes or a number with K, M, G or T, e\.g\. --memory-budget 2G$/);
  });
});
