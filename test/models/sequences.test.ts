// A model that holds several sequences (LlamaLoadOptions.sequences): each is
// its own region of the KV cache. The ordinary path on sequence s (params.base
// = s·contextLength: prefill, one-token steps, decode chains) gives bit for bit
// what sequence 0 gives, and sequences interleaved step by step do not disturb
// each other; a batched step (forwardBatch) of several sequences, prompts and
// decodes mixed, gives each the ids it gets alone (or parts at a near-tie:
// its Q4_0 tiles quantize x to 8 bits as llama.cpp does). Synthetic random-weight
// llama (headDim 16: the subgroup attention and the decode chains on lavapipe),
// f16, f32, q8_0 and q4_0 caches, chained and step by step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { LlamaModel } from '../../src/models/llama.ts';
import type { KvType } from '../../src/models/kv-cache.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { argmax } from './reference.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-seq-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const engine = await getTestEngine();
const gpuTuned = await getTestEngine({ tuning: 'gpu' });

async function load(opts: { sequences: number; chains?: boolean; kvType?: KvType; gpu?: boolean; type?: 'q4_0' | 'q8_0' }) {
  const type = opts.type ?? 'q4_0';
  const path = join(dir, `m-${type}.gguf`);
  await makeModel({ out: path, seed: 21, std: 0.08, type, layers: 2 });
  const file = await openGguf(path);
  const { type: _, ...load } = opts;
  const m = await LlamaModel.load((opts.gpu ? gpuTuned : engine)!, file, readConfig(file), { contextLength: 40, maxBatch: 16, ...load });
  await file.close();
  return m;
}

const PROMPTS = [[5, 17, 3, 99, 42, 7, 1], [64, 23, 8], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]];

/** Greedy: the prompt, then `n` one-token steps on `seq`; every step's logits. */
async function run(m: LlamaModel, seq: number, prompt: number[], n: number): Promise<Float32Array[]> {
  const out = [await m.forward(prompt, 0, { seq })];
  for (let i = 0; i < n; i++) out.push(await m.forward([argmax(out[i])], prompt.length + i, { seq }));
  return out;
}

describe.skipIf(!engine || !gpuTuned)('several sequences in one KV cache', () => {
  it.each([
    ['chained', { chains: true }],
    ['step by step', { chains: false }],
    ['q8_0 cache', { kvType: 'q8_0' as KvType }],
  ] as const)('sequence 2 gives bit for bit what sequence 0 gives, interleaved or not (%s)', async (_name, opts) => {
    const m = await load({ sequences: 3, ...opts });
    try {
      if ('chains' in opts && opts.chains) expect(m.chained).toBe(true);
      const zero = await run(m, 0, PROMPTS[0], 6);
      const two = await run(m, 2, PROMPTS[0], 6);
      for (const [i, l] of two.entries()) expect(l, `step ${i}`).toEqual(zero[i]);
      // Interleaved: sequence 1 and sequence 2 step by step in turn, each as it was alone.
      const alone1 = await run(m, 1, PROMPTS[1], 5);
      const a = [await m.forward(PROMPTS[1], 0, { seq: 1 })], b = [await m.forward(PROMPTS[0], 0, { seq: 2 })];
      for (let i = 0; i < 5; i++) {
        a.push(await m.forward([argmax(a[i])], PROMPTS[1].length + i, { seq: 1 }));
        b.push(await m.forward([argmax(b[i])], PROMPTS[0].length + i, { seq: 2 }));
      }
      expect(a).toEqual(alone1);
      expect(b).toEqual(zero.slice(0, 6));
      // The greedy argmax path on sequence 1 agrees.
      expect(await m.forwardArgmax(PROMPTS[2], 0, { seq: 1 })).toBe(argmax((await run(m, 0, PROMPTS[2], 0))[0]));
    } finally {
      m.dispose();
    }
  });

  it.each([
    [undefined, false],
    ['q8_0', false],
    ['q4_0', false],
    ['f32', false],
    [undefined, true],
  ] as const)('a batched step of prompts and decodes gives each sequence its ids alone (kv %s, GPU tuning %s)', async (kvType, gpu) => {
    const m = await load({ sequences: 3, kvType, gpu });
    try {
      const aloneLogits = [];
      for (const p of PROMPTS) aloneLogits.push(await run(m, 0, p, 6));
      const alone = aloneLogits.map((ls) => ls.map(argmax));
      // Sequence 0 starts alone; 1 and 2 join with their prompts in its steps, in chunks (maxBatch 16).
      const ids: number[][] = [[await m.forwardArgmax(PROMPTS[0], 0, { seq: 0 })], [], []];
      let r = await m.forwardBatch([{ seq: 0, tokens: [ids[0][0]], pos: PROMPTS[0].length }, { seq: 1, tokens: PROMPTS[1], pos: 0 }, { seq: 2, tokens: PROMPTS[2].slice(0, 6), pos: 0, logits: true }]);
      ids[0].push(r.ids[0]);
      ids[1].push(r.ids[1]);
      expect(r.logits.map((l) => l?.length)).toEqual([undefined, undefined, m.vocab]);
      r = await m.forwardBatch([{ seq: 2, tokens: PROMPTS[2].slice(6), pos: 6 }, { seq: 0, tokens: [ids[0][1]], pos: PROMPTS[0].length + 1 }, { seq: 1, tokens: [ids[1][0]], pos: PROMPTS[1].length, logits: true }]);
      ids[2].push(r.ids[0]);
      ids[0].push(r.ids[1]);
      ids[1].push(r.ids[2]);
      expect(argmax(r.logits[2]!)).toBe(r.ids[2]);
      for (let i = 0; i < 3; i++) {
        r = await m.forwardBatch([0, 1, 2].map((s) => ({ seq: s, tokens: [ids[s].at(-1)!], pos: PROMPTS[s].length + ids[s].length - 1 })));
        for (let s = 0; s < 3; s++) ids[s].push(r.ids[s]);
      }
      // The decode-only steps' Q4_0 products quantize x to 8 bits (matmul_q4_0_q8.wgsl), the
      // one-token path does not: ids agree, or first part at a near-tie of the one-token logits
      // (the logits here span ~4; the one divergence seen is a gap of 0.016).
      for (let s = 0; s < 3; s++) {
        const k = ids[s].findIndex((id, i) => id !== alone[s][i]);
        if (k < 0) continue;
        const l = aloneLogits[s][k];
        expect(l[alone[s][k]] - l[ids[s][k]], `sequence ${s} parts at step ${k}: ${ids[s]} vs ${alone[s]}`).toBeLessThan(0.05);
      }
    } finally {
      m.dispose();
    }
  });

  it.each([
    [undefined, 'q4_0'],
    ['f32', 'q4_0'],
    [undefined, 'q8_0'], // f32 tiles: no quantize phases, no records bound
  ] as const)('a batched chain gives the batched steps\' logits bit for bit (kv %s, weights %s)', async (kvType, type) => {
    const chained = await load({ sequences: 3, kvType, type });
    const plain = await load({ sequences: 3, kvType, chains: false, type });
    try {
      expect(chained.batchChained).toBe(true);
      expect(plain.batchChained).toBe(false);
      const P = [PROMPTS[0], [...PROMPTS[1], 30, 31, 32, 33], PROMPTS[2]];
      const steps = async (m: LlamaModel) => {
        const out: (Float32Array | undefined)[][] = [];
        for (const [s, p] of P.entries()) await m.forwardArgmax(p.slice(0, 3), 0, { seq: s });
        // All three sequences; two of them; a prompt's last two tokens beside a decode (3 tokens: still the narrow step).
        out.push((await m.forwardBatch([0, 1, 2].map((s) => ({ seq: s, tokens: [P[s][3]], pos: 3, logits: true })))).logits);
        out.push((await m.forwardBatch([2, 0].map((s) => ({ seq: s, tokens: [P[s][4]], pos: 4, logits: true })))).logits);
        out.push((await m.forwardBatch([{ seq: 0, tokens: P[0].slice(5, 7), pos: 5, logits: true }, { seq: 2, tokens: [P[2][5]], pos: 5, logits: true }])).logits);
        return out;
      };
      const a = await steps(chained), b = await steps(plain);
      expect(a.flat().every((l) => l?.length === chained.vocab)).toBe(true);
      expect(a).toEqual(b);
    } finally {
      chained.dispose();
      plain.dispose();
    }
  });

  it('refuses a bad sequence, a batch over maxBatch tokens or with a sequence twice, and parallel beyond maxBatch', async () => {
    const m = await load({ sequences: 2 });
    try {
      await expect(m.forward([1], 0, { seq: 2 })).rejects.toThrow(/^sequence 2 is invalid: this model holds sequences 0…1/);
      await expect(m.forwardBatch([{ seq: 0, tokens: [1], pos: 0 }, { seq: 0, tokens: [2], pos: 1 }])).rejects.toThrow(UsageError);
      await expect(m.forwardBatch([{ seq: 0, tokens: new Array(12).fill(1), pos: 0 }, { seq: 1, tokens: new Array(5).fill(1), pos: 0 }])).rejects.toThrow(/at most 16 tokens, got 2 requests of 17 tokens/);
    } finally {
      m.dispose();
    }
    await expect(load({ sequences: 17 })).rejects.toThrow(/^parallel 17 must be a whole number of sequences in 1…16/);
  });
});
