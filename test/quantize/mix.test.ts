// llama.cpp's per-tensor type rules on a synthetic 32-layer model (4096 columns).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { chooseType, fallback, mixContext, shouldQuantize, targetByName } from '../../src/quantize/mix.ts';
import { GgmlType } from '../../src/quant/table.ts';

const L = 32;
const tensors = [
  { name: 'token_embd.weight', dims: [4096, 32000] },
  ...Array.from({ length: L }, (_, i) => [
    { name: `blk.${i}.attn_q.weight`, dims: [4096, 4096] },
    { name: `blk.${i}.attn_v.weight`, dims: [4096, 1024] },
    { name: `blk.${i}.attn_norm.weight`, dims: [4096] },
    { name: `blk.${i}.ffn_down.weight`, dims: [11008, 4096] },
  ]).flat(),
  { name: 'output_norm.weight', dims: [4096] },
  { name: 'output.weight', dims: [4096, 32000] },
];

function types(target: string, pure = false): Map<string, GgmlType> {
  const ctx = mixContext(targetByName(target), tensors, 4, pure);
  const m = new Map<string, GgmlType>();
  for (const t of tensors) if (shouldQuantize(t.name, t.dims)) m.set(t.name, chooseType(ctx, t.name, t.dims).type);
  return m;
}

// llama.cpp's use_more_bits for 32 layers: 0..3, 28..31 and 4 + 3k + 2.
const MORE = new Set([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);

describe('llama.cpp tensor type mix', () => {
  it('Q4_K_M: output Q6_K, token_embd Q4_K, attn_v/ffn_down Q6_K on the use_more_bits layers', () => {
    const m = types('Q4_K_M');
    expect(m.get('output.weight')).toBe(GgmlType.Q6_K);
    expect(m.get('token_embd.weight')).toBe(GgmlType.Q4_K);
    for (let i = 0; i < L; i++) {
      const want = MORE.has(i) ? GgmlType.Q6_K : GgmlType.Q4_K;
      expect(m.get(`blk.${i}.attn_v.weight`), `layer ${i}`).toBe(want);
      expect(m.get(`blk.${i}.ffn_down.weight`), `layer ${i}`).toBe(want);
      expect(m.get(`blk.${i}.attn_q.weight`)).toBe(GgmlType.Q4_K);
    }
    expect(m.has('output_norm.weight')).toBe(false); // 1-D tensors are never quantized
    expect(types('Q4_K').get('blk.0.attn_v.weight')).toBe(GgmlType.Q6_K); // alias of Q4_K_M
  });
  it('Q4_K_S: first four attn_v and first eighth of ffn_down in Q5_K', () => {
    const m = types('Q4_K_S');
    expect([0, 1, 2, 3, 4].map((i) => m.get(`blk.${i}.attn_v.weight`))).toEqual([GgmlType.Q5_K, GgmlType.Q5_K, GgmlType.Q5_K, GgmlType.Q5_K, GgmlType.Q4_K]);
    expect(m.get('blk.3.ffn_down.weight')).toBe(GgmlType.Q5_K);
    expect(m.get('blk.4.ffn_down.weight')).toBe(GgmlType.Q4_K);
  });
  it('Q5_K_M promotes like Q4_K_M; Q2_K uses Q4_K attn_v (GQA 4) and Q3_K ffn_down', () => {
    expect(types('Q5_K_M').get('blk.6.ffn_down.weight')).toBe(GgmlType.Q6_K);
    expect(types('Q5_K_M').get('blk.7.ffn_down.weight')).toBe(GgmlType.Q5_K);
    const q2 = types('Q2_K');
    expect(q2.get('blk.9.attn_v.weight')).toBe(GgmlType.Q4_K);
    expect(q2.get('blk.9.ffn_down.weight')).toBe(GgmlType.Q3_K);
    expect(q2.get('blk.9.attn_q.weight')).toBe(GgmlType.Q2_K);
  });
  it('plain types keep the base everywhere but output; --pure keeps it on output too', () => {
    const m = types('Q4_0');
    expect(m.get('blk.0.attn_v.weight')).toBe(GgmlType.Q4_0);
    expect(m.get('output.weight')).toBe(GgmlType.Q6_K);
    expect(types('Q8_0').get('output.weight')).toBe(GgmlType.Q8_0);
    expect(types('Q4_K_M', true).get('output.weight')).toBe(GgmlType.Q4_K);
    expect(types('Q4_K_M', true).get('blk.0.attn_v.weight')).toBe(GgmlType.Q4_K);
    expect(types('F16').get('output.weight')).toBe(GgmlType.F16);
  });
  it('MXFP4_MOE: expert tensors (ne[2] > 1) MXFP4, every other quantized tensor Q8_0, as llama-quant.cpp', () => {
    const moe = [
      { name: 'token_embd.weight', dims: [2880, 201088] },
      { name: 'blk.0.attn_q.weight', dims: [2880, 4096] },
      { name: 'blk.0.ffn_gate_inp.weight', dims: [2880, 32] },
      { name: 'blk.0.ffn_up_exps.weight', dims: [2880, 2880, 32] },
      { name: 'blk.0.ffn_down_exps.weight', dims: [2880, 2880, 32] },
      { name: 'blk.1.ffn_down_exps.weight', dims: [2890, 2880, 32] }, // rows not a multiple of 32: F16
      { name: 'output.weight', dims: [2880, 201088] },
    ];
    const ctx = mixContext(targetByName('mxfp4_moe'), moe, 8);
    const got = moe.filter((t) => shouldQuantize(t.name, t.dims)).map((t) => [t.name, chooseType(ctx, t.name, t.dims).type]);
    expect(Object.fromEntries(got)).toEqual({
      'token_embd.weight': GgmlType.Q8_0,
      'blk.0.attn_q.weight': GgmlType.Q8_0,
      'blk.0.ffn_up_exps.weight': GgmlType.MXFP4,
      'blk.0.ffn_down_exps.weight': GgmlType.MXFP4,
      'blk.1.ffn_down_exps.weight': GgmlType.F16,
      'output.weight': GgmlType.Q8_0,
    });
    expect(targetByName('MXFP4_MOE').ftype).toBe(38);
    // --pure: the base type everywhere.
    expect(chooseType(mixContext(targetByName('MXFP4_MOE'), moe, 8, true), 'blk.0.attn_q.weight', [2880, 4096]).type).toBe(GgmlType.MXFP4);
  });
  it('falls back when rows do not fit the block, with a note', () => {
    expect(fallback(GgmlType.Q4_K, 64)).toMatchObject({ type: GgmlType.Q5_0, note: expect.stringMatching(/64 columns.*Q5_0/) });
    expect(fallback(GgmlType.Q5_K, 96).type).toBe(GgmlType.Q5_1);
    expect(fallback(GgmlType.Q6_K, 64).type).toBe(GgmlType.Q8_0);
    expect(fallback(GgmlType.Q2_K, 64).type).toBe(GgmlType.IQ4_NL);
    expect(fallback(GgmlType.Q4_K, 172).type).toBe(GgmlType.F16);
    expect(fallback(GgmlType.Q4_0, 172).type).toBe(GgmlType.F16);
    expect(fallback(GgmlType.Q4_0, 64)).toEqual({ type: GgmlType.Q4_0 });
  });
  it('unknown types are a UsageError listing the valid ones', () => {
    expect(() => targetByName('Q7_X')).toThrow(UsageError);
    expect(() => targetByName('Q7_X')).toThrow(/Q4_K_M.*Q8_0|Q8_0.*Q4_K_M/);
    expect(targetByName('q4_k_m').ftype).toBe(15);
  });
});
