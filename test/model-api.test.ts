// loadModel's refusals before any GPU work (memory plan, budget, tensor types),
// its progress reports, and one generation at a time on a real model.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { GpuError, UsageError } from '../src/errors.ts';
import { kv } from '../src/gguf/writer.ts';
import { Engine } from '../src/gpu/engine.ts';
import { loadModel } from '../src/model-api.ts';
import { GgmlType } from '../src/quant/table.ts';
import { getTestEngine } from './gpu/fixture.ts';
import { rewriteMeta } from './gguf/remeta.ts';
import { hasShared, sharedModel } from './shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-model-api-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());
const stories = sharedModel('stories260K.gguf');
const gpu = hasShared && !!(await getTestEngine());

describe.skipIf(!hasShared)('loadModel refuses before opening the device', () => {
  it.each([-1, 0, -0.5, Number.NaN, Number.POSITIVE_INFINITY])('memoryBudget %s', async (budget) => {
    const create = vi.spyOn(Engine, 'create');
    const e = await loadModel(stories, { memoryBudget: budget }).catch((x) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toMatch(/^memoryBudget \S+ is not a positive number of bytes: pass e\.g\. 2147483648/);
    expect(create).not.toHaveBeenCalled();
  });

  it('a budget of 1 MiB, naming the parts and what to change (weights alone exceed it)', async () => {
    const create = vi.spyOn(Engine, 'create');
    const e = await loadModel(stories, { memoryBudget: 1 << 20 }).catch((x) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toMatch(/^loading needs [\d.]+ MiB of GPU memory at contextLength 2048 \(weights 1\.1 MiB, KV cache [^)]+\), over the memoryBudget of 1\.0 MiB: even the smallest context does not fit; raise memoryBudget/);
    expect(create).not.toHaveBeenCalled();
  });

  it('a tensor type without a GPU kernel (I8)', async () => {
    const path = await rewriteMeta(stories, join(dir, 'i8.gguf'), {}, (t) => (t.name === 'blk.3.ffn_down.weight' ? { type: GgmlType.I8, data: new Uint8Array(t.nElements) } : undefined));
    const create = vi.spyOn(Engine, 'create');
    const e = await loadModel(path).catch((x) => x);
    expect(e).toBeInstanceOf(GpuError);
    expect(e.message).toMatch(/^tensor type I8 \(blk\.3\.ffn_down\.weight\) has no GPU kernel/);
    expect(create).not.toHaveBeenCalled();
  });
});

describe.skipIf(!gpu)('loadModel checks the whole plan before the first buffer', () => {
  it('an impossible context the metadata allows is refused by the adapter limits, with the largest that fits', async () => {
    const path = await rewriteMeta(stories, join(dir, 'ctx.gguf'), { 'llama.context_length': kv.u32('llama.context_length', 100_000_000) });
    const alloc = vi.spyOn(Engine.prototype, 'createBuffer');
    const e = await loadModel(path, { contextLength: 100_000_000 }).catch((x) => x);
    expect(e).toBeInstanceOf(GpuError);
    expect(e.message).toMatch(/^the (k cache|v cache|rope table|attention partials) \(one of \d+\) needs [\d.]+ GiB at contextLength 100000000, over this GPU's max\w+ of [\d.]+ \w+: lower contextLength \(-c\) to \d+ or less$/);
    expect(alloc).not.toHaveBeenCalled();
  });

  it('a budget under what the context needs names a context that fits, and that one loads within it', async () => {
    const budget = 2.5 * (1 << 20); // stories260K at 2048 tokens needs about 2.8 MiB
    const e = await loadModel(stories, { memoryBudget: budget }).catch((x) => x);
    expect(e).toBeInstanceOf(UsageError);
    const fit = Number(/lower contextLength \(-c\) to (\d+) or less, or raise memoryBudget \(--memory-budget\)$/.exec(e.message)?.[1]);
    expect(fit).toBeGreaterThan(2);
    expect(fit).toBeLessThan(2048);
    const m = await loadModel(stories, { memoryBudget: budget, contextLength: fit });
    try {
      expect(m.memory().total).toBeLessThanOrEqual(budget);
    } finally {
      m.dispose();
    }
  });

  it('onProgress reports strictly increasing fractions ending at 1 (ready)', async () => {
    const seen: [number, string][] = [];
    const m = await loadModel(stories, { onProgress: (f, l) => seen.push([f, l]) });
    m.dispose();
    expect(seen.length).toBeGreaterThan(10);
    for (let i = 1; i < seen.length; i++) expect(seen[i][0]).toBeGreaterThan(seen[i - 1][0]);
    expect(seen[0][0]).toBeGreaterThanOrEqual(0);
    expect(seen.at(-1)).toEqual([1, 'ready']);
  });

  it('NaN weights fail every sampling path with one line, not a stream of <unk>', async () => {
    const nan = (n: number) => new Uint8Array(new Float32Array(n).fill(Number.NaN).buffer);
    const path = await rewriteMeta(stories, join(dir, 'nan.gguf'), {}, (t) => (t.name === 'output_norm.weight' ? { type: t.type, data: nan(t.nElements) } : undefined));
    const m = await loadModel(path);
    try {
      for (const temperature of [0, 0.8]) {
        const run = async () => {
          for await (const _ of m.generate('Once', { temperature, maxTokens: 4 }));
        };
        await expect(run()).rejects.toThrow(GpuError);
        await expect(run()).rejects.toThrow(/^the logits are not finite \(NaN[^\n]*$/);
      }
    } finally {
      m.dispose();
    }
  });

  it('a dropped generate() iterator does not block the next generation', async () => {
    const m = await loadModel(stories);
    try {
      const old = m.generate('Once upon a time', { temperature: 0, maxTokens: 50 });
      const it = old[Symbol.asyncIterator]();
      expect((await it.next()).done).toBe(false);
      // Dropped: no return(), no abort. A new generation runs to its end.
      const text: string[] = [];
      for await (const t of m.generate('Once upon a time', { temperature: 0, maxTokens: 8 })) text.push(t.text);
      expect(text.join('')).toMatch(/\w/);
      expect((await old.stats).stopReason).toBe('abort');
      await expect(it.next()).rejects.toThrow(/superseded/);
    } finally {
      m.dispose();
    }
  });
});
