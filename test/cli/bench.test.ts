// `qllm bench` through the real bin on a synthetic tiny Q4_0 model: the JSON
// keys and how they relate (no timing is asserted, only consistency), the
// per-step profile, the human-readable report, and one-line errors.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openGguf } from '../../src/gguf/index.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { qllm } from './helpers.ts';

const probe = await getTestEngine();
let model = '';

beforeAll(async () => {
  model = join(await mkdtemp(join(tmpdir(), 'qllm-bench-')), 'tiny-q4_0.gguf');
  await makeModel({ out: model, preset: 'tiny', type: 'q4_0', seed: 3 });
});

describe.skipIf(!probe)('qllm bench', () => {
  it('--json --profile: medians within their spread, bandwidth = bytes x tok/s, memory and profile add up', async () => {
    const r = await qllm(['bench', model, '-p', '8', '-n', '4', '-r', '2', '--json', '--profile']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ model, prompt_tokens: 8, decode_tokens: 4, reps: 2, decode_chained: true });
    for (const k of ['prefill_tok_s', 'decode_tok_s']) {
      const s = j[k];
      expect(s.min).toBeGreaterThan(0);
      expect(s.min).toBeLessThanOrEqual(s.median);
      expect(s.median).toBeLessThanOrEqual(s.max);
    }
    // Bytes per decode token: every matrix but the embedding (this model has its own output matrix).
    const f = await openGguf(model);
    const want = f.tensors.filter((t) => t.dims.length >= 2 && t.name !== 'token_embd.weight').reduce((s, t) => s + t.nBytes, 0);
    await f.close();
    expect(j.weight_bytes_per_token).toBe(want);
    expect(j.decode_weight_gb_s).toBeCloseTo((want * j.decode_tok_s.median) / 1e9, 9);
    expect(j.copy_gb_s).toBeGreaterThan(0);
    expect(j.bandwidth_utilisation).toBeCloseTo(j.decode_weight_gb_s / j.copy_gb_s, 9);
    const m = j.gpu_bytes;
    expect(m.total).toBe(m.weights + m.kv + m.activations + m.other);
    expect(j.ttft_ms).toBeGreaterThanOrEqual(j.load_ms);
    // Profile: one row per step; q|k|v and gate|up share a type here, so each is one product.
    const steps = j.profile.map((p: { step: string }) => p.step);
    expect(steps).toEqual(expect.arrayContaining(['attn_q+attn_k+attn_v', 'ffn_gate+ffn_up', 'ffn_down', 'attention', 'output', 'argmax']));
    // Prefill-only steps are listed too (decode may fuse the norms into the products).
    expect(steps).toEqual(expect.arrayContaining(['attn_norm', 'ffn_norm', 'output_norm']));
    const share = j.profile.reduce((s: number, p: { decode_share: number }) => s + p.decode_share, 0);
    expect(share).toBeCloseTo(1, 6);
    // The steps' weight bytes add up to the bytes per token.
    expect(j.profile.reduce((s: number, p: { weight_bytes?: number }) => s + (p.weight_bytes ?? 0), 0)).toBe(want);
    // Decode runs each layer as one dispatch on this adapter (a decode chain):
    // its row carries the layers' weight bytes; prefill's rows are per product.
    const layer = j.profile.find((p: { step: string }) => p.step === 'layer (chained)');
    expect(layer.weight_bytes).toBeGreaterThan(0);
    expect(layer.decode_gb_s).toBeGreaterThan(0);
    expect(j.profile.find((p: { step: string }) => p.step === 'attn_q+attn_k+attn_v').prefill_ms).toBeGreaterThan(0);
  });

  // The decode chain's workgroups spin until each phase is done; they only
  // wait for items running workgroups have claimed, so the chain finishes
  // however many threads lavapipe runs (0: inline on its queue thread).
  it('decode chains give the same greedy ids with lavapipe running 0, 1 or its default threads', async () => {
    const ids: number[][] = [];
    for (const env of [{}, { LP_NUM_THREADS: '0' }, { LP_NUM_THREADS: '1' }] as Record<string, string>[]) {
      const r = await qllm(['run', model, '-p', 'hello', '-n', '8', '--temp', '0', '--json', '--no-stats'], env);
      expect(r.code, r.stderr).toBe(0);
      ids.push(JSON.parse(r.stdout).ids);
    }
    expect(ids[0]).toHaveLength(8);
    expect(ids[1]).toEqual(ids[0]);
    expect(ids[2]).toEqual(ids[0]);
  });

  it('prints a readable report without --json', async () => {
    const r = await qllm(['bench', model, '-p', '4', '-n', '2', '-r', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/prefill {2}pp4: [\d.]+ tok\/s/);
    expect(r.stdout).toMatch(/decode {3}tg2: [\d.]+ tok\/s/);
    expect(r.stdout).toMatch(/utilisation [\d.]+%/);
    expect(r.stdout).toMatch(/memory {3}weights/);
  });

  it.each([
    [['-p', '0'], /-p/],
    [['-r', 'three'], /-r/],
    [['-c', '4', '-p', '8'], /-c 4 is too small .* pass -c 40 or more/],
  ])('bad flags %j: exit 1 and one line', async (flags, msg) => {
    const r = await qllm(['bench', model, ...flags]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('qllm:'));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(msg);
  });

  it.skipIf(!hasShared)("without -c, fits the model's own context (stories260K-q4_0: 128), or says to lower -p/-n", async () => {
    const small = sharedModel('stories260K-q4_0.gguf');
    const ok = await qllm(['bench', small, '-p', '16', '-n', '8', '-r', '1', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    // K+V for 128 positions: 5 layers × 32 values × 2 (K and V) × 128 × 2 bytes (f16; 4 on the f32 path).
    expect([81920, 163840]).toContain(JSON.parse(ok.stdout).gpu_bytes.kv);
    const big = await qllm(['bench', small, '-p', '100', '-n', '40', '-r', '1']);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/^qllm: the model's context is 128 tokens, too small for a 100-token prompt and 40 decoded tokens: lower -p\/-n so that p \+ n ≤ 128$/m);
  });
});
