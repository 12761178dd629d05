// `qllm info` end to end through the real bin, on the shared real models.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasShared, sharedModel } from '../shared.ts';
import { qllm } from './helpers.ts';

describe.skipIf(!hasShared)('qllm info on ../shared models', () => {
  it('reports stories260K as llama, 5 blocks, dim 64, 8 heads, 4 KV heads, vocab 512', async () => {
    const r = await qllm(['info', sharedModel('stories260K.gguf'), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.architecture).toBe('llama');
    expect(j.hyperparameters).toMatchObject({ block_count: 5, embedding_length: 64, head_count: 8, head_count_kv: 4 });
    expect(j.vocab_size).toBe(512);
    expect(j.tokenizer).toMatchObject({ model: 'llama', vocab_size: 512 });
    expect(j.tensor_types).toEqual({ F32: expect.objectContaining({ count: 48 }) });
    expect(j.memory.weights_stored_bytes).toBe(j.memory.weights_f32_bytes);
    // K+V, 5 layers, 2048 positions, 4 KV heads × head dim 8, f16.
    expect(j.memory.kv_cache_f16_bytes).toBe(2 * 5 * 2048 * 4 * 8 * 2);
  });

  for (const q of ['q8_0', 'q4_0', 'q4_1', 'q4_k_m']) {
    it(`lists per-type tensor counts and a savings table for stories260K-${q}`, async () => {
      const r = await qllm(['info', sharedModel(`stories260K-${q}.gguf`), '--json']);
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout);
      const types = j.tensor_types as Record<string, { count: number; bytes: number; parameters: number }>;
      expect(Object.values(types).reduce((a, t) => a + t.count, 0)).toBe(48);
      expect(Object.values(types).reduce((a, t) => a + t.bytes, 0)).toBe(j.memory.weights_stored_bytes);
      const f32 = JSON.parse((await qllm(['info', sharedModel('stories260K.gguf'), '--json'])).stdout);
      expect(j.parameters).toBe(f32.parameters);
      expect(j.memory.weights_f16_bytes).toBe(f32.parameters * 2);
      expect(j.memory.weights_stored_bytes).toBeLessThan(j.memory.weights_f16_bytes);
      expect(types.F32.count).toBe(11); // 5×2 norms + output_norm stay F32
      const text = await qllm(['info', sharedModel(`stories260K-${q}.gguf`)]);
      expect(text.stdout).toMatch(/weights in F16/);
      expect(text.stdout).toMatch(/weights: [\d.]+ KiB, f16 would need 571\.88 KiB \([\d.]+x smaller\)/);
    });
  }

  it('says an F32 file is larger than f16 and to quantize it, in the one wording', async () => {
    const r = await qllm(['info', sharedModel('stories260K.gguf')]);
    expect(r.stdout).toMatch(/weights: 1\.12 MiB, f16 would need 571\.88 KiB \(2\.00x larger than f16; quantize it with qllm quantize\)/);
    expect(r.stdout).not.toMatch(/0\.50x/);
  });

  it('-c N: the GPU memory a run takes at most (weights + KV cache + activations), which bounds what a run allocates', async () => {
    const r = await qllm(['info', sharedModel('stories260K-q8_0.gguf'), '-c', '96', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(r.stdout).memory.run;
    expect(run.context_length).toBe(96);
    expect(run.kv_bytes).toBe(2 * 5 * 96 * 4 * 8 * 2); // K+V, 5 layers, 96 positions, 4 KV heads x 8, f16
    expect(run.kv_f32_bytes).toBe(2 * run.kv_bytes);
    expect(run.total_bytes).toBe(run.weights_bytes + run.kv_bytes + run.activations_bytes);
    const text = await qllm(['info', sharedModel('stories260K-q8_0.gguf'), '-c', '96']);
    expect(text.stdout).toMatch(/running it at -c 96 takes up to [\d.]+ (KiB|MiB) of GPU memory/);
    // What a run at that context allocates (the KV type follows the adapter's shader-f16).
    const m = JSON.parse((await qllm(['run', sharedModel('stories260K-q8_0.gguf'), '-c', '96', '-p', 'hi', '-n', '1', '--json', '--no-stats'])).stdout).stats.gpu_bytes;
    expect(m.kv === run.kv_bytes || m.kv === run.kv_f32_bytes).toBe(true);
    expect(m.weights).toBe(run.weights_bytes);
    expect(m.total).toBeLessThanOrEqual(m.kv === run.kv_bytes ? run.total_bytes : run.total_f32_kv_bytes);
  });

  it('-c beyond the model or below 2: one line with a value to pass', async () => {
    const big = await qllm(['info', sharedModel('stories260K.gguf'), '-c', '4096']);
    expect(big.code).toBe(1);
    expect(big.stderr.trim()).toBe("qllm: -c 4096 exceeds the model's context of 2048: pass -c 2048 or less");
    expect((await qllm(['info', sharedModel('stories260K.gguf'), '-c', '1'])).stderr).toMatch(/pass e\.g\. -c 2048/);
  });

  it('reports 32000 tokens for the Llama SPM vocabulary', async () => {
    const j = JSON.parse((await qllm(['info', sharedModel('ggml-vocab-llama-spm.gguf'), '--json'])).stdout);
    expect(j.tokenizer.vocab_size).toBe(32000);
    expect(j.tensor_count).toBe(0);
  });
});

describe('qllm info errors', () => {
  it('names a missing file, a directory and a non-GGUF file in one line, exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qllm-info-'));
    const txt = join(dir, 'notes.txt');
    await writeFile(txt, 'hello, this is not a model\n');
    for (const [arg, re] of [[join(dir, 'nope.gguf'), /does not exist/], [dir, /is a directory/], [txt, /GGUF/]] as const) {
      const r = await qllm(['info', arg]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });

  it('rejects unknown commands and flags with a usage line', async () => {
    expect((await qllm(['frobnicate'])).stderr).toMatch(/unknown command 'frobnicate'/);
    const r = await qllm(['info', '--bogus', 'x.gguf']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--bogus/);
    expect(r.stderr).not.toMatch(/did you mean/); // nothing near
    expect((await qllm(['infp'])).stderr.trim()).toBe("qllm: unknown command 'infp': did you mean 'info'? — run 'qllm --help' for the list");
    expect((await qllm(['info', 'x.gguf', '--jsno'])).stderr.trim()).toBe("qllm: unknown option '--jsno': did you mean --json? — see 'qllm info --help'");
  });
});
