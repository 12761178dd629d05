// What the MoE families refuse at load, each in one line naming the key or
// tensor: expert counts llama.cpp would reject or qllm's router cannot take,
// shared experts (but for qwen2moe, whose four shared-expert tensors are then
// required, as llama.cpp's loader requires them) and expert groups, tensors of
// features qllm lacks, expert tensors whose dims disagree with the metadata,
// and a gpt-oss file without its sliding window.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Config, readConfig } from '../../src/config.ts';
import { GgufError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import type { GgufFile, TensorInfo } from '../../src/gguf/types.ts';
import { planModel } from '../../src/models/family.ts';
import { checkModel } from '../../src/models/llama-tensors.ts';
import { makeModel } from '../../src/synth/make-model.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-moe-refuse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tiny(arch: string): Promise<{ file: GgufFile; config: Config }> {
  const out = join(dir, `${arch}.gguf`);
  await makeModel({ out, arch, type: 'q8_0', seed: 1 });
  const file = await openGguf(out);
  return { file, config: readConfig(file) };
}

/** The file with its tensors replaced by `edit`'s list (same bytes; only checkModel reads it). */
function withTensors(f: GgufFile, edit: (ts: TensorInfo[]) => TensorInfo[]): GgufFile {
  const tensors = edit([...f.tensors]);
  return { ...f, tensors, tensor: (n: string) => tensors.find((t) => t.name === n) };
}

describe('MoE refusals at load', () => {
  it('expert keys: counts, top-k, shared experts, groups, a missing expert width', async () => {
    const { file, config } = await tiny('qwen3moe');
    try {
      const plan = (over: Partial<Config>) => () => planModel({ ...config, ...over }, 64, () => false, 'f.gguf');
      expect(plan({})).not.toThrow();
      expect(plan({ expertCount: 0 })).toThrow(/^qwen3moe\.expert_count is missing or 0 \(a 'qwen3moe' model is a mixture of experts\) in f\.gguf/);
      expect(plan({ expertUsedCount: 9 })).toThrow(/^qwen3moe\.expert_used_count 9 must be between 1 and expert_count 8 in f\.gguf/);
      expect(plan({ expertCount: 64, expertUsedCount: 33 })).toThrow(/^top-33 of 64 experts in f\.gguf is not supported: qllm routes at most 32/);
      expect(plan({ expertSharedFfnDim: 128 })).toThrow(/^shared experts in f\.gguf are not supported for 'qwen3moe' models/);
      expect(plan({ expertGroupCount: 4 })).toThrow(/^expert groups \(qwen3moe\.expert_group_count 4\) in f\.gguf are not supported/);
      // qwen3moe falls back to feed_forward_length / k (llama.cpp's n_ff / n_expert_used), so only a zero of both fails.
      expect(planModel({ ...config, expertFfnDim: 0 }, 64, () => false, 'f').moe!.ff).toBe(config.ffnDim / config.expertUsedCount);
      for (const f of [plan({ expertCount: 0 }), plan({ expertGroupCount: 4 })]) expect(f).toThrow(GgufError);
      // llama without experts stays dense; with them it is Mixtral.
      expect(planModel({ ...config, arch: 'llama', expertCount: 0 }, 64, () => false, 'f').moe).toBeUndefined();
      expect(planModel({ ...config, arch: 'llama' }, 64, () => false, 'f').moe).toMatchObject({ experts: 8, used: 2, ff: config.ffnDim, gating: 'softmax', normalize: true });
    } finally {
      await file.close();
    }
  });

  it('tensors: a shared expert or a selection bias by name, an expert tensor with the wrong dims, a missing router', async () => {
    const { file, config } = await tiny('qwen3moe');
    try {
      const up = file.tensor('blk.0.ffn_up_exps.weight')!;
      const extra = (name: string) => withTensors(file, (ts) => [...ts, { ...up, name }]);
      expect(() => checkModel(file, config, 64)).not.toThrow();
      for (const name of ['blk.0.ffn_gate_shexp.weight', 'blk.1.exp_probs_b.bias']) {
        expect(() => checkModel(extra(name), config, 64)).toThrow(new RegExp(`^tensor ${name.replace(/\./g, '\\.')} in \\S+ is not supported for 'qwen3moe' models`));
      }
      const wrong = withTensors(file, (ts) => ts.map((t) => (t.name === up.name ? { ...t, dims: [up.dims[0], up.dims[1] * 2, up.dims[2] / 2] } : t)));
      expect(() => checkModel(wrong, config, 64)).toThrow(/^tensor blk\.0\.ffn_up_exps\.weight has dims \[64, 128, 4\] but the metadata implies \[64, 64, 8\] \(cols, rows, experts\)/);
      const noRouter = withTensors(file, (ts) => ts.filter((t) => t.name !== 'blk.1.ffn_gate_inp.weight'));
      expect(() => checkModel(noRouter, config, 64)).toThrow(/^tensor blk\.1\.ffn_gate_inp\.weight is missing from \S+: the file is incomplete or not a 'qwen3moe' model \(a mixture-of-experts layer: 8 experts\)$/);
    } finally {
      await file.close();
    }
  });

  it('qwen2moe: the shared expert\'s width (key, else feed_forward_length), its four tensors required and shape-checked', async () => {
    const { file, config } = await tiny('qwen2moe');
    try {
      expect(() => checkModel(file, config, 64)).not.toThrow();
      const plan = (over: Partial<Config>) => planModel({ ...config, ...over }, 64, () => false, 'f.gguf').moe!;
      expect(plan({})).toMatchObject({ experts: 8, used: 4, ff: 64, sharedFf: 96, gating: 'softmax', normalize: false });
      expect(plan({ expertSharedFfnDim: 0 }).sharedFf).toBe(config.ffnDim); // llama.cpp: n_ff_shexp = n_ff when the key is absent
      expect(plan({ expertFfnDim: 0 }).ff).toBe(config.ffnDim / 4); // n_ff / n_expert_used, as qwen3moe
      expect(plan({ expertSharedCount: 2 }).sharedFf).toBe(96); // qwen2moe's loader does not read the count: one shared expert
      expect(() => plan({ expertGroupCount: 4 })).toThrow(/^expert groups/);
      for (const name of ['blk.0.ffn_gate_inp_shexp.weight', 'blk.1.ffn_gate_shexp.weight', 'blk.0.ffn_up_shexp.weight', 'blk.1.ffn_down_shexp.weight']) {
        const without = withTensors(file, (ts) => ts.filter((t) => t.name !== name));
        expect(() => checkModel(without, config, 64)).toThrow(new RegExp(`^tensor ${name.replace(/\./g, '\\.')} is missing from \\S+: the file is incomplete or not a 'qwen2moe' model \\(a layer with a shared expert: Qwen2-MoE\\)$`));
      }
      // A shared expert of another width than the key says.
      expect(() => checkModel(file, { ...config, expertSharedFfnDim: 128 }, 64)).toThrow(/^tensor blk\.0\.ffn_gate_shexp\.weight is \[96 rows × 64 cols\] but the metadata implies \[128 × 64\]/);
    } finally {
      await file.close();
    }
  });

  it('gpt-oss: the sliding window key and the sinks and expert biases are required', async () => {
    const { file, config } = await tiny('gpt-oss');
    try {
      expect(() => checkModel(file, config, 64)).not.toThrow();
      expect(() => planModel({ ...config, slidingWindow: undefined }, 64, () => false, 'f.gguf')).toThrow(/^metadata key gpt-oss\.attention\.sliding_window is missing or 0 in f\.gguf/);
      for (const name of ['blk.0.attn_sinks.weight', 'blk.1.ffn_down_exps.bias', 'blk.0.ffn_gate_inp.bias']) {
        const without = withTensors(file, (ts) => ts.filter((t) => t.name !== name));
        expect(() => checkModel(without, config, 64)).toThrow(new RegExp(`^tensor ${name.replace(/\./g, '\\.')} is missing from`));
      }
    } finally {
      await file.close();
    }
  });

  // llama.cpp loads output.weight of these without TENSOR_NOT_REQUIRED: a tied file is refused there, so here.
  it.each(['gpt-oss', 'qwen2moe', 'olmoe', 'olmo2'])('%s: output.weight is required (no tied head in llama.cpp)', async (arch) => {
    const { file, config } = await tiny(arch);
    try {
      expect(() => checkModel(file, config, 64)).not.toThrow();
      const tied = withTensors(file, (ts) => ts.filter((t) => t.name !== 'output.weight'));
      expect(() => checkModel(tied, config, 64)).toThrow(GgufError);
      expect(() => checkModel(tied, config, 64)).toThrow(new RegExp(`^tensor output\\.weight is missing from .*: llama\\.cpp's '${arch}' graph has no tied output head`));
    } finally {
      await file.close();
    }
  });

  it('qwen3moe keeps its tied head (llama.cpp falls back to token_embd)', async () => {
    const { file, config } = await tiny('qwen3moe');
    try {
      const tied = withTensors(file, (ts) => ts.filter((t) => t.name !== 'output.weight'));
      expect(checkModel(tied, config, 64).output).toBeUndefined();
    } finally {
      await file.close();
    }
  });
});
