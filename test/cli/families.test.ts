// `qllm info` and `qllm run` on make-model --arch files, as a user would run them:
// info names each family and its quirks; run streams tokens for every family;
// a file with a tensor qllm does not implement fails at load with one line.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufWriter } from '../../src/gguf/writer.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { GgmlType } from '../../src/quant/table.ts';
import { ARCHES, makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { qllm } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-cli-families-'));
const path = (arch: string) => join(dir, `${arch}.gguf`);
beforeAll(async () => {
  for (const arch of ARCHES) await makeModel({ out: path(arch), arch, type: 'q8_0', seed: 3 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// What info must say per family: the quirks llama.cpp's builder has for it.
const QUIRKS: Record<string, RegExp[]> = {
  llama: [/^rope norm, SwiGLU$/],
  qwen2: [/rope neox/, /SwiGLU/],
  qwen3: [/rope neox/, /q\/k norm \(per head\)/],
  gemma: [/rope neox/, /GeGLU/, /embedding scale 8\b/],
  gemma2: [/GeGLU/, /pre- and post-norms/, /sliding window \d+ on 1\/2 layers/, /attention softcap/, /final logit softcap/],
  gemma3: [/q\/k norm \(per head\)/, /pre- and post-norms/],
  phi3: [/rope neox/, /SwiGLU/],
  granite: [/embedding scale/, /residual scale/, /logit scale 1\//],
  smollm3: [/no RoPE on 1\/4 layers|no RoPE on \d+\/\d+ layers/],
  olmo2: [/q\/k norm \(whole vector\)/, /post-norms only/],
};

describe('qllm info names the family and its quirks', () => {
  it.each(ARCHES)('%s', async (arch) => {
    const r = await qllm(['info', path(arch), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.architecture).toBe(arch);
    expect(j.family.supported).toBe(true);
    for (const re of QUIRKS[arch]) expect(j.family.quirks).toMatch(re);
    const text = await qllm(['info', path(arch)]);
    expect(text.stdout).toContain(`family        ${j.family.quirks}`);
  });

  it('says why an architecture is not supported', async () => {
    const r = await qllm(['info', path('llama'), '--json']);
    expect(JSON.parse(r.stdout).family.error).toBeNull();
    const bad = join(dir, 'gpt2.gguf');
    await rewrite(path('llama'), bad, { arch: 'gpt2' });
    const j = JSON.parse((await qllm(['info', bad, '--json'])).stdout);
    expect(j.family).toMatchObject({ supported: false, quirks: null });
    expect(j.family.error).toMatch(/architecture 'gpt2' is not supported/);
  });
});

/** Copies a GGUF, optionally renaming the architecture (its keys follow) and adding one f32 [4] tensor. */
async function rewrite(from: string, to: string, o: { arch?: string; extra?: string }) {
  const f = await openGguf(from);
  const old = f.kv.get('general.architecture')!.value as string;
  const arch = o.arch ?? old;
  const kvs = [...f.kv.values()].map((e) =>
    e.key === 'general.architecture' ? { ...e, value: arch } : e.key.startsWith(`${old}.`) ? { ...e, key: `${arch}.${e.key.slice(old.length + 1)}` } : e,
  );
  const tensors = [...f.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type })), ...(o.extra ? [{ name: o.extra, dims: [4], type: GgmlType.F32 }] : [])];
  const w = await GgufWriter.create(to, { kv: kvs, tensors });
  for (const t of f.tensors) await w.writeTensorData(t.name, await f.readTensor(t));
  if (o.extra) await w.writeTensorData(o.extra, new Uint8Array(16));
  await w.close();
  await f.close();
}

describe.skipIf(!(await getTestEngine()))('qllm run on every family', () => {
  it.each(ARCHES)('%s streams 8 tokens and its stats', async (arch) => {
    const r = await qllm(['run', path(arch), '-p', 'Once upon a time', '-n', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ids.length).toBeGreaterThan(0);
    // An end-of-generation token counts as generated but is not streamed.
    expect(j.stats.generated_tokens - j.ids.length).toBe(j.stats.stop_reason === 'eos' ? 1 : 0);
    expect(j.stats.gpu_bytes.weights).toBeGreaterThan(0);
  });

  it('refuses a tensor the family does not use, in one line, exit 1', async () => {
    const bad = join(dir, 'extra.gguf');
    await rewrite(path('qwen2'), bad, { extra: 'blk.0.attn_output.bias' });
    const r = await qllm(['run', bad, '-p', 'x', '-n', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('Warning:'))).toEqual([
      expect.stringMatching(/tensor blk\.0\.attn_output\.bias in .* is not supported for 'qwen2' models/),
    ]);
  });
});
