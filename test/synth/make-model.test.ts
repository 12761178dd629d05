import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig, tensorNames } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { makeModel, useMoreBits } from '../../src/synth/make-model.ts';
import { syntheticVocab } from '../../src/synth/vocab.ts';
import type { GgufArray } from '../../src/gguf/types.ts';
import { hasShared, repoRoot, sharedModel } from '../shared.ts';

const tmp = mkdtempSync(join(tmpdir(), 'qllm-synth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TYPES = ['f32', 'f16', 'bf16', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs'];

describe('make-model', () => {
  for (const type of TYPES) {
    it(`tiny ${type}: shapes, types, metadata, weight statistics`, async () => {
      const out = join(tmp, `tiny-${type}.gguf`);
      const made = await makeModel({ out, type, seed: 7 });
      expect(existsSync(`${out}.tmp`)).toBe(false);
      const g = await openGguf(out);
      const c = readConfig(g);
      const k = type.endsWith('_k') || type === 'iq4_xs';
      const dim = k ? 256 : 64;
      const ffn = k ? 512 : 128;
      expect([c.arch, c.dim, c.nLayers, c.nHeads, c.nKvHeads, c.ffnDim, c.vocabSize, c.contextLength]).toEqual(['llama', dim, 2, 4, 2, ffn, 512, 256]);
      expect(c.headDim).toBe(dim / 4);
      expect(c.ropeDim).toBe(dim / 4);
      expect(c.rmsEps).toBeCloseTo(1e-5, 9);
      expect(c.ropeTheta).toBe(10000);
      expect(g.kv.get('general.quantization_version')!.value).toBe(2);
      expect(c.tokenizer!.tokens.length).toBe(512);
      expect(made.notes).toEqual([]);
      // llama.cpp order: token_embd, per layer attn_norm … ffn_down, output_norm, output.
      const l0 = tensorNames.layer(0);
      expect(g.tensors.slice(0, 11).map((t) => t.name)).toEqual([tensorNames.token_embd, l0.attn_norm, l0.attn_q, l0.attn_k, l0.attn_v, l0.attn_output, l0.ffn_norm, l0.ffn_gate, l0.ffn_up, l0.ffn_down, tensorNames.layer(1).attn_norm]);
      expect(g.tensors.at(-1)!.name).toBe(tensorNames.output);
      expect(g.tensors.length).toBe(1 + 2 * 9 + 2);
      expect(g.tensor(tensorNames.token_embd)!.dims).toEqual([dim, 512]);
      expect(g.tensor(l0.attn_k)!.dims).toEqual([dim, 2 * (dim / 4)]);
      expect(g.tensor(l0.ffn_down)!.dims).toEqual([ffn, dim]);
      expect(g.tensor(l0.attn_norm)!.type.name).toBe('F32');
      for (const t of g.tensors) if (t.dims.length === 2) expect(t.type.name, t.name).toBe(type.toUpperCase());
      // Dequantized weights: finite, mean ≈ 0, std ≈ 0.02; norms ≈ 1.
      const t = g.tensor(l0.ffn_up)!;
      const w = dequantize(t.type.id, await g.readTensor(t), t.nElements);
      let s = 0, s2 = 0, bad = 0;
      for (const x of w) { if (!Number.isFinite(x)) bad++; s += x; s2 += x * x; }
      expect(bad).toBe(0);
      const mean = s / w.length;
      const std = Math.sqrt(s2 / w.length - mean * mean);
      expect(std).toBeGreaterThan(0.015);
      expect(std).toBeLessThan(0.03);
      expect(Math.abs(mean)).toBeLessThan(0.005);
      const nw = new Float32Array((await g.readTensor(g.tensor(l0.attn_norm)!)).slice().buffer);
      expect(nw.every((x) => x > 0.9 && x < 1.1)).toBe(true);
      await g.close();
    });
  }

  it('arch llama with the legacy options writes the same bytes as before --arch existed', async () => {
    // sha256 of files written by make-model before the per-family rewrite (same options, same seeds).
    const golden: [Parameters<typeof makeModel>[0], string][] = [
      [{ out: join(tmp, 'g1.gguf'), type: 'f32', seed: 7 }, '1498267b0c5391a9420dab90a29c197f345759e975c15add5063b893813c032f'],
      [{ out: join(tmp, 'g2.gguf'), type: 'q4_k_m', layers: 8, arch: 'llama' }, 'db3a5bc7d244d0ba51ded2d530e81825c3578da4bcba72890b2d54f3ed603fcc'],
      [{ out: join(tmp, 'g3.gguf'), type: 'q4_0', std: 0.08, seed: 9 }, '2002ad569d3744a59357d29c00da62d13a9828447e67e28063d5781a5bed126f'],
      [{ out: join(tmp, 'g4.gguf'), type: 'q6_k', dim: 64, ffn: 48, heads: 4, kvHeads: 2 }, '715fc9e7236af9e00fae36f8d6d74a12a59a392365d80ae8ea531ace210f822b'],
    ];
    for (const [o, sha] of golden) {
      await makeModel(o);
      expect(createHash('sha256').update(readFileSync(o.out)).digest('hex'), o.out).toBe(sha);
    }
  });

  it('use-more-bits layers follow llama.cpp', () => {
    const on = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
    expect(on(22)).toEqual([0, 1, 4, 7, 10, 13, 16, 19, 20, 21]);
    expect(on(8)).toEqual([0, 3, 6, 7]);
    expect(on(2)).toEqual([1]);
  });

  it('q4_k_m: Q6_K on output and on attn_v/ffn_down of the promoted layers', async () => {
    const out = join(tmp, 'q4km.gguf');
    await makeModel({ out, type: 'q4_k_m', layers: 8 });
    const g = await openGguf(out);
    expect(g.tensor('output.weight')!.type.name).toBe('Q6_K');
    expect(g.tensor('token_embd.weight')!.type.name).toBe('Q4_K');
    expect(g.kv.get('general.file_type')!.value).toBe(15);
    for (let i = 0; i < 8; i++) {
      const n = tensorNames.layer(i);
      const promoted = [0, 3, 6, 7].includes(i);
      expect(g.tensor(n.attn_v)!.type.name, n.attn_v).toBe(promoted ? 'Q6_K' : 'Q4_K');
      expect(g.tensor(n.ffn_down)!.type.name, n.ffn_down).toBe(promoted ? 'Q6_K' : 'Q4_K');
      for (const k of [n.attn_q, n.attn_k, n.attn_output, n.ffn_gate, n.ffn_up]) expect(g.tensor(k)!.type.name).toBe('Q4_K');
    }
    await g.close();
  });

  it('falls back like llama.cpp when blocks do not divide a row', async () => {
    const out = join(tmp, 'fallback.gguf');
    const made = await makeModel({ out, type: 'q4_k', dim: 64, ffn: 96, heads: 4, kvHeads: 2 });
    const g = await openGguf(out);
    expect(g.tensor('blk.0.attn_q.weight')!.type.name).toBe('Q5_0');
    expect(g.tensor('blk.0.ffn_down.weight')!.type.name).toBe('Q5_0');
    expect(made.notes.length).toBe(g.tensors.filter((t) => t.dims.length === 2).length);
    await g.close();
    const made2 = await makeModel({ out: join(tmp, 'fb2.gguf'), type: 'q6_k', dim: 64, ffn: 48, heads: 4, kvHeads: 2 });
    expect(made2.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!.type).toBe('F16');
    expect(made2.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')!.type).toBe('Q8_0');
  });

  it('bad shapes and types are UsageErrors', async () => {
    await expect(makeModel({ out: join(tmp, 'x.gguf'), dim: 65 })).rejects.toThrow(UsageError);
    await expect(makeModel({ out: join(tmp, 'x.gguf'), heads: 4, kvHeads: 3 })).rejects.toThrow(/kv-head/);
    await expect(makeModel({ out: join(tmp, 'x.gguf'), type: 'q9_9' })).rejects.toThrow(/--type q9_9/);
    await expect(makeModel({ out: join(tmp, 'x.gguf'), vocab: 100 })).rejects.toThrow(/too small/);
    await expect(makeModel({ out: join(tmp, 'x.gguf'), preset: 'huge' })).rejects.toThrow(/unknown preset/);
  });

  it('synthetic vocabulary: specials, byte tokens, every normal token derivable as a merge', () => {
    const kvs = syntheticVocab(3000);
    const get = (k: string) => kvs.find((x) => x.key === k)!.value;
    const tokens = (get('tokenizer.ggml.tokens') as GgufArray).values as string[];
    const types = (get('tokenizer.ggml.token_type') as GgufArray).values as Int32Array;
    const scores = (get('tokenizer.ggml.scores') as GgufArray).values as Float32Array;
    expect(tokens.length).toBe(3000);
    expect(new Set(tokens).size).toBe(3000);
    expect(tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect(Array.from(types.slice(0, 3))).toEqual([2, 3, 3]);
    expect(tokens[3]).toBe('<0x00>');
    expect(tokens[3 + 0x0a]).toBe('<0x0A>');
    expect(tokens[258]).toBe('<0xFF>');
    expect(types[100]).toBe(6);
    expect(tokens).toContain('\u2581the');
    const set = new Set(tokens.slice(259));
    for (let i = 259; i < 3000; i++) {
      expect(types[i]).toBe(1);
      if (i > 259) expect(scores[i]).toBeLessThan(scores[i - 1]!);
      const t = tokens[i]!;
      if ([...t].length > 1) {
        const ok = [...t].some((_, k) => k > 0 && set.has([...t].slice(0, k).join('')) && set.has([...t].slice(k).join('')));
        expect(ok, t).toBe(true);
      }
    }
  });

  it.skipIf(!hasShared)('--vocab copies a real vocabulary and takes its size', async () => {
    const out = join(tmp, 'spm.gguf');
    await makeModel({ out, vocabFile: sharedModel('ggml-vocab-llama-spm.gguf'), layers: 1 });
    const g = await openGguf(out);
    const c = readConfig(g);
    expect(c.vocabSize).toBe(32000);
    expect(c.tokenizer!.tokens.length).toBe(32000);
    expect(c.tokenizer!.tokens[29871]).toBe('\u2581');
    expect(g.tensor('output.weight')!.dims).toEqual([64, 32000]);
    await g.close();
  });

  it('npm run make-model script: writes and reports; bad flags exit 1 with one line', () => {
    const out = join(tmp, 'cli.gguf');
    const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
    const ok = spawnSync(tsx, ['scripts/make-model.ts', '--type', 'q8_0', '--layers', '1', '-o', out], { cwd: repoRoot, encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/wrote .*cli\.gguf: [\d.]+ MiB/);
    expect(existsSync(out)).toBe(true);
    const bad = spawnSync(tsx, ['scripts/make-model.ts', '--dim', 'x', '-o', out], { cwd: repoRoot, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const out2 = join(tmp, 'cli-gemma2.gguf');
    const g2 = spawnSync(tsx, ['scripts/make-model.ts', '--arch', 'gemma2', '--type', 'q8_0', '--head-dim', '64', '--rope-base', '20000', '-o', out2], { cwd: repoRoot, encoding: 'utf8' });
    expect(g2.status, g2.stderr).toBe(0);
    expect(g2.stdout).toMatch(/gemma2: dim 64, 2 layers, 4 heads, 2 kv heads, head size 64/);
    expect(g2.stdout).toMatch(/tied output, wide init, window 16/);
    const bad2 = spawnSync(tsx, ['scripts/make-model.ts', '--arch', 'olmo2', '--tied', '-o', out2], { cwd: repoRoot, encoding: 'utf8' });
    expect(bad2.status).toBe(1);
    expect(bad2.stderr).toMatch(/^make-model: --arch olmo2 needs output.weight/);
  });
});
