// make-model's MoE families: the keys and tensors llama.cpp's loaders expect
// (qwen3moe, mixtral = a llama file with expert_count, olmoe, gpt-oss,
// qwen2moe with its shared expert), the type mixes
// (F32 router always; mxfp4_moe: MXFP4 experts, Q8_0 elsewhere), the MXFP4
// block filler's statistics, and the refusals.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { GgmlType } from '../../src/quant/table.ts';
import { blockFiller, Rng } from '../../src/synth/blocks.ts';
import { makeModel } from '../../src/synth/make-model.ts';

const tmp = mkdtempSync(join(tmpdir(), 'qllm-moe-synth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('make-model: MoE families', () => {
  it.each([
    ['qwen3moe', 'qwen3moe', 8, 2, 64, true],
    ['mixtral', 'llama', 4, 2, 128, false],
    ['olmoe', 'olmoe', 8, 3, 64, false],
    ['gpt-oss', 'gpt-oss', 8, 4, 64, true],
    ['qwen2moe', 'qwen2moe', 8, 4, 64, true],
  ] as const)('%s: arch %s, %i experts top-%i, expert ffn %i; mxfp4_moe types', async (arch, gguf, E, k, ff, ffKey) => {
    const out = join(tmp, `${arch}.gguf`);
    const m = await makeModel({ out, arch, type: 'mxfp4_moe', seed: 1 });
    const f = await openGguf(out);
    try {
      const c = readConfig(f);
      expect(c.arch).toBe(gguf);
      expect([c.expertCount, c.expertUsedCount, c.expertFfnDim]).toEqual([E, k, ffKey ? ff : 0]);
      const t = (n: string) => f.tensor(n)!;
      expect(t('blk.1.ffn_gate_inp.weight').dims).toEqual([c.dim, E]);
      expect(t('blk.1.ffn_gate_inp.weight').type.name).toBe('F32');
      expect(t('blk.1.ffn_gate_exps.weight').dims).toEqual([c.dim, ff, E]);
      expect(t('blk.1.ffn_up_exps.weight').dims).toEqual([c.dim, ff, E]);
      expect(t('blk.1.ffn_down_exps.weight').dims).toEqual([ff, c.dim, E]);
      for (const n of ['gate', 'up', 'down']) expect(t(`blk.0.ffn_${n}_exps.weight`).type.name).toBe('MXFP4');
      expect(t('blk.0.attn_q.weight').type.name).toBe('Q8_0');
      expect(f.tensor('blk.0.ffn_gate.weight')).toBeUndefined();
      expect(m.notes).toEqual([]);
    } finally {
      await f.close();
    }
  });

  it('gpt-oss: window, sinks, biases on attn_output, the router and every expert tensor; post_attention_norm as the FFN norm', async () => {
    const out = join(tmp, 'gpt-oss-q8.gguf');
    await makeModel({ out, arch: 'gpt-oss', type: 'q8_0', seed: 1 });
    const f = await openGguf(out);
    try {
      const c = readConfig(f);
      expect(c.slidingWindow).toBe(8);
      expect(c.headDim * c.nHeads).not.toBe(c.dim); // head size 32 × 4 heads on dim 64, as gpt-oss's 64 × 64 on 2880
      const dims = (n: string) => f.tensor(`blk.0.${n}`)?.dims;
      expect(dims('attn_sinks.weight')).toEqual([c.nHeads]);
      expect(dims('attn_output.bias')).toEqual([c.dim]);
      expect(dims('attn_q.bias')).toEqual([c.nHeads * c.headDim]);
      expect(dims('post_attention_norm.weight')).toEqual([c.dim]);
      expect(dims('ffn_norm.weight')).toBeUndefined();
      expect(dims('ffn_gate_inp.bias')).toEqual([8]);
      expect(dims('ffn_gate_exps.bias')).toEqual([64, 8]);
      expect(dims('ffn_up_exps.bias')).toEqual([64, 8]);
      expect(dims('ffn_down_exps.bias')).toEqual([c.dim, 8]);
      // Every element of a 2-D bias is written (random, not zero).
      const b = new Float32Array((await f.readTensor(f.tensor('blk.1.ffn_down_exps.bias')!)).slice().buffer);
      expect(b.length).toBe(c.dim * 8);
      expect(b.filter((x) => x === 0).length).toBeLessThan(4);
    } finally {
      await f.close();
    }
  });

  it('qwen2moe: the shared expert (gate F32 [dim], FFN of expert_shared_feed_forward_length), q/k/v biases, output.weight', async () => {
    const out = join(tmp, 'qwen2moe-q8.gguf');
    await makeModel({ out, arch: 'qwen2moe', type: 'q8_0', seed: 1 });
    const f = await openGguf(out);
    try {
      const c = readConfig(f);
      expect([c.expertFfnDim, c.expertSharedFfnDim, c.ffnDim, c.expertSharedCount]).toEqual([64, 96, 128, 0]);
      const t = (n: string) => f.tensor(`blk.1.${n}`)!;
      expect(t('ffn_gate_inp_shexp.weight').dims).toEqual([c.dim]);
      expect(t('ffn_gate_inp_shexp.weight').type.name).toBe('F32');
      expect(t('ffn_gate_shexp.weight').dims).toEqual([c.dim, 96]);
      expect(t('ffn_up_shexp.weight').dims).toEqual([c.dim, 96]);
      expect(t('ffn_down_shexp.weight').dims).toEqual([96, c.dim]);
      for (const n of ['gate', 'up', 'down']) expect(t(`ffn_${n}_shexp.weight`).type.name).toBe('Q8_0');
      expect(t('attn_q.bias').dims).toEqual([c.dim]);
      expect(f.tensor('output.weight')).toBeDefined();
      // The gate's logits σ(w·xn) with xn ~ unit rms: w has std 2/sqrt(dim).
      const w = new Float32Array((await f.readTensor(t('ffn_gate_inp_shexp.weight'))).slice().buffer);
      const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
      expect(Math.abs(std * Math.sqrt(c.dim) - 2)).toBeLessThan(0.6);
    } finally {
      await f.close();
    }
    // --shared-ffn sets the key; 0 is refused as any other width, and other families have no shared expert.
    const wide = join(tmp, 'qwen2moe-wide.gguf');
    await makeModel({ out: wide, arch: 'qwen2moe', type: 'q8_0', seed: 1, sharedFfn: 160 });
    const g = await openGguf(wide);
    expect(readConfig(g).expertSharedFfnDim).toBe(160);
    expect(g.tensor('blk.0.ffn_down_shexp.weight')!.dims).toEqual([160, 64]);
    await g.close();
    await expect(makeModel({ out: join(tmp, 'bad.gguf'), arch: 'qwen3moe', sharedFfn: 64 })).rejects.toThrow(/^--shared-ffn applies to qwen2moe, not qwen3moe$/);
  });

  it('q4_k: k-quant shapes keep every expert row whole 256-blocks (no fallback)', async () => {
    for (const arch of ['qwen3moe', 'mixtral', 'olmoe', 'gpt-oss', 'qwen2moe']) {
      const m = await makeModel({ out: join(tmp, `${arch}-k.gguf`), arch, type: 'q4_k', seed: 1 });
      expect(m.notes).toEqual([]);
      expect(m.tensors.filter((x) => x.name.endsWith('_exps.weight') || x.name.endsWith('_shexp.weight')).every((x) => x.type === (x.name.includes('gate_inp') ? 'F32' : 'Q4_K'))).toBe(true);
    }
  });

  it('MXFP4 blocks have the asked std and zero mean', () => {
    const rng = new Rng(7);
    for (const std of [0.02, 0.1, 0.7]) {
      const { info, fill } = blockFiller(GgmlType.MXFP4, std, rng);
      const bytes = new Uint8Array(4096 * info.blockBytes);
      fill(bytes);
      const w = dequantize(GgmlType.MXFP4, bytes, 4096 * 32);
      let s = 0, s2 = 0;
      for (const v of w) {
        s += v;
        s2 += v * v;
      }
      const mean = s / w.length, got = Math.sqrt(s2 / w.length - mean * mean);
      expect(Math.abs(got / std - 1)).toBeLessThan(0.1);
      expect(Math.abs(mean)).toBeLessThan(0.02 * std);
    }
  });

  it('refuses expert options on dense families, bad expert counts, GQA OLMoE and mxfp4_moe on a dense model', async () => {
    const o = join(tmp, 'bad.gguf');
    await expect(makeModel({ out: o, arch: 'qwen3', experts: 4 })).rejects.toThrow(/^--experts, --experts-used and --expert-ffn apply to qwen3moe, mixtral, olmoe, gpt-oss, qwen2moe, not qwen3$/);
    await expect(makeModel({ out: o, arch: 'qwen3moe', experts: 2, expertsUsed: 3 })).rejects.toThrow(UsageError);
    await expect(makeModel({ out: o, arch: 'olmoe', kvHeads: 2 })).rejects.toThrow(/^--arch olmoe needs --kv-heads equal to --heads \(4\)/);
    await expect(makeModel({ out: o, arch: 'llama', type: 'mxfp4_moe' })).rejects.toThrow(/^--type mxfp4_moe quantizes expert tensors/);
  });
});
