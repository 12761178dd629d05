// How the KV cache's bytes are reported: `qllm info` (describeModel, its text
// report and --kv-type), the run stats line, and the CLI/API option parsing.
// No GPU: the figures come from the memory plan (memory-plan.test.ts checks
// the plan against real allocations).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatReport } from '../../src/cli/info.ts';
import { statsLines } from '../../src/cli/run.ts';
import { parseServeArgs } from '../../src/cli/serve.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { describeModel, formatKvBytes } from '../../src/info.ts';
import { kvCacheBytes, parseKvType, resolveKvType } from '../../src/models/kv-cache.ts';
import type { QllmModel } from '../../src/model-api.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { hasShared, sharedModel } from '../shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-kv-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('KV type options', () => {
  it('parses f32, f16, q8_0, q4_0; anything else is one line naming the flag and the choices', () => {
    for (const t of ['f32', 'f16', 'q8_0', 'q4_0']) expect(parseKvType(t, '--kv-type')).toBe(t);
    expect(parseKvType(undefined)).toBeUndefined();
    for (const bad of ['Q8_0', 'q4_1', '', 'f16 ', 8]) {
      expect(() => parseKvType(bad, '--kv-type')).toThrow(UsageError);
      expect(() => parseKvType(bad, '--kv-type')).toThrow(/^--kv-type .* is not a KV cache type: pass one of f32, f16, q8_0, q4_0 \(default f16, or f32 where the GPU lacks shader-f16\)$/);
    }
  });

  it('defaults to f16, or f32 without shader-f16; an asked-for type stands either way', () => {
    expect(resolveKvType(undefined, true)).toBe('f16');
    expect(resolveKvType(undefined, false)).toBe('f32');
    expect(resolveKvType('q8_0', false)).toBe('q8_0');
    expect(resolveKvType('f16', false)).toBe('f16'); // f16 pairs are packed with pack2x16float: no shader-f16 needed
  });

  it('qllm serve takes --kv-type into its load options, and refuses a bad one before loading', () => {
    const a = parseServeArgs(['m.gguf', '--kv-type', 'q4_0'], {});
    expect(a !== 'help' && a.load).toEqual({ contextLength: undefined, kvType: 'q4_0', parallel: 4 });
    const b = parseServeArgs(['m.gguf'], {});
    expect(b !== 'help' && 'kvType' in b.load).toBe(false);
    expect(() => parseServeArgs(['m.gguf', '--kv-type', 'q5_0'], {})).toThrow(/^--kv-type q5_0 is not a KV cache type/);
  });
});

describe('the KV line of the run stats', () => {
  it('puts a non-f16 cache beside what f16 would need', () => {
    expect(formatKvBytes(1.0625 * 2 ** 20, 'q8_0', 2 * 2 ** 20)).toBe('kv 1.06 MiB (q8_0; f16 would need 2.00 MiB)');
    expect(formatKvBytes(4 * 2 ** 20, 'f32', 2 * 2 ** 20)).toBe('kv 4.00 MiB (f32; f16 would need 2.00 MiB)');
    expect(formatKvBytes(2 * 2 ** 20, 'f16', 2 * 2 ** 20)).toBe('kv 2.00 MiB');
    expect(formatKvBytes(2048, undefined, undefined)).toBe('kv 2.00 KiB');
    const model = {
      memory: () => ({ weights: 1 << 20, kv: 87040, activations: 4096, other: 1024, total: (1 << 20) + 87040 + 5120 }),
      info: { f16WeightBytes: 1 << 20, kvType: 'q8_0', kvF16Bytes: 163840, adapter: 'test' },
    } as unknown as QllmModel;
    const stats = { promptTokens: 5, generatedTokens: 3, ttftMs: 1, prefillTokPerS: 1, decodeTokPerS: 1, stopReason: 'length' as const };
    expect(statsLines(model, stats, 10)).toMatch(/^gpu memory: weights 1\.00 MiB, kv 85\.00 KiB \(q8_0; f16 would need 160\.00 KiB\), activations/m);
  });
});

describe.skipIf(!hasShared)('qllm info: KV cache types', () => {
  it('stories260K: q8_0 and q4_0 rows at 34/64 and 18/64 of f16, and --kv-type sizes the run', async () => {
    const file = await openGguf(sharedModel('stories260K.gguf'));
    try {
      const r = describeModel(file, { contextLength: 96 });
      const m = r.memory;
      expect(m.kv_cache_f16_bytes).toBe(2 * 5 * 2048 * 32 * 2);
      expect(m.kv_cache_q8_0_bytes).toBe((m.kv_cache_f16_bytes * 34) / 64);
      expect(m.kv_cache_q4_0_bytes).toBe((m.kv_cache_f16_bytes * 18) / 64);
      expect(m.run).toMatchObject({ kv_type: 'f16', kv_bytes: 2 * 5 * 96 * 32 * 2, kv_f16_bytes: 2 * 5 * 96 * 32 * 2 });
      const text = formatReport(r);
      expect(text).toMatch(/KV cache q8_0 @2048 +680\.00 KiB {2}53\.1% of KV f16/);
      expect(text).toMatch(/KV cache q4_0 @2048 +360\.00 KiB {2}28\.1% of KV f16/);
      expect(text).toMatch(/\+ KV cache f16 60\.00 KiB \+ activations/);
      expect(text).toMatch(/where the adapter lacks shader-f16: KV cache f32 120\.00 KiB/);

      const q = describeModel(file, { contextLength: 96, kvType: 'q4_0' });
      const run = q.memory.run!;
      expect(run.kv_type).toBe('q4_0');
      expect(run.kv_bytes).toBe(kvCacheBytes('q4_0', { nLayers: 5, nKvHeads: 4, headDim: 8 }, 96));
      expect(run.kv_bytes).toBe(2 * 5 * 96 * 18);
      expect(run.total_bytes - run.kv_bytes).toBe(m.run!.total_bytes - m.run!.kv_bytes); // only the cache changes
      const qtext = formatReport(q);
      expect(qtext).toMatch(/\+ KV cache q4_0 16\.88 KiB \(f16 would need 60\.00 KiB\) \+ activations/);
      expect(qtext).not.toMatch(/lacks shader-f16/); // an asked-for type does not follow the adapter
    } finally {
      await file.close();
    }
  });

  it('a model whose K/V rows are not whole blocks has no block-type rows', async () => {
    const out = join(dir, 'head10.gguf');
    await makeModel({ out, arch: 'llama', heads: 6, kvHeads: 3, headDim: 10, seed: 2 });
    const file = await openGguf(out);
    try {
      const r = describeModel(file);
      expect(r.memory.kv_cache_q8_0_bytes).toBeNull();
      expect(r.memory.kv_cache_q4_0_bytes).toBeNull();
      expect(formatReport(r)).not.toMatch(/KV cache q[48]_0/);
    } finally {
      await file.close();
    }
  });
});
