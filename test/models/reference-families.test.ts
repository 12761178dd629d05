// The float64 reference on tiny hand-built models of each family, against
// invariants that a wrong piece of maths would break: a hand-written 1-layer
// Gemma 2 and OLMo2, exact equivalences between families (Phi-3's fused
// tensors vs split ones, Granite's scales vs edited Llama weights, GQA vs
// duplicated heads), windows, soft-caps, NoPE and the embedding scale.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { kv } from '../../src/gguf/writer.ts';
import { ReferenceLlama, ReferenceModel, geluTanh, silu } from './reference.ts';
import { type TinySpec, tinyModel } from './reference-tiny.ts';

const TOKENS = [5, 77, 130, 9, 200, 41, 3, 250];
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const lastLogits = (m: ReferenceModel, toks: number[]) => m.run(toks, 0).at(-1)!;

// Plain helpers for the hand-written passes below (deliberately not the reference's).
const mv = (w: Float32Array, x: number[], rows: number) => Array.from({ length: rows }, (_, r) => x.reduce((s, xc, c) => s + w[r * x.length + c] * xc, 0));
const rms = (x: number[], w: ArrayLike<number>, eps: number) => {
  const r = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => (v / r) * w[i]);
};
const add = (a: number[], b: number[]) => a.map((v, i) => v + b[i]);

describe('reference: hand-written 1-layer passes', () => {
  it('gemma2: √dim embedding, pre+post norms, NEOX RoPE, Q scaled then soft-capped, GeGLU, final cap', async () => {
    const eps = 1e-6, dim = 8, hd = 4, cap = 1.0, fcap = 2.0;
    const t = await tinyModel({
      arch: 'gemma2', dim, layers: 1, heads: 2, kvHeads: 1, ffn: 12, eps, seed: 5, std: 0.5,
      extra: [kv.f32('gemma2.attn_logit_softcapping', cap), kv.f32('gemma2.final_logit_softcapping', fcap)],
    });
    const W = (n: string) => t.weights.get(n)!;
    const E = W('token_embd.weight');
    const keys: number[][] = [], vals: number[][] = [];
    const step = (tok: number, pos: number) => {
      const x = Array.from(E.subarray(tok * dim, (tok + 1) * dim), (v) => v * Math.sqrt(dim));
      const h = rms(x, W('blk.0.attn_norm.weight'), eps);
      const q = mv(W('blk.0.attn_q.weight'), h, 2 * hd), k = mv(W('blk.0.attn_k.weight'), h, hd), v = mv(W('blk.0.attn_v.weight'), h, hd);
      // NEOX on a 4-wide head: pairs (0,2) at pos·1 rad and (1,3) at pos·0.01 rad.
      const rot = (z: number[], o: number) => {
        for (const [a, b, th] of [[o, o + 2, pos], [o + 1, o + 3, pos * 0.01]]) {
          const [za, zb] = [z[a], z[b]];
          z[a] = za * Math.cos(th) - zb * Math.sin(th);
          z[b] = za * Math.sin(th) + zb * Math.cos(th);
        }
      };
      for (const [z, o] of [[q, 0], [q, 4], [k, 0]] as const) rot(z, o);
      keys.push(k);
      vals.push(v);
      const att: number[] = [];
      for (let hh = 0; hh < 2; hh++) {
        const s = keys.map((kj) => cap * Math.tanh(kj.reduce((acc, kv_, d) => acc + kv_ * q[hh * hd + d], 0) / Math.sqrt(hd) / cap));
        const e = s.map((v_) => Math.exp(v_ - Math.max(...s)));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < hd; d++) att.push(vals.reduce((acc, vj, j) => acc + (e[j] / z) * vj[d], 0));
      }
      const x1 = add(x, rms(mv(W('blk.0.attn_output.weight'), att, dim), W('blk.0.post_attention_norm.weight'), eps));
      const h2 = rms(x1, W('blk.0.ffn_norm.weight'), eps);
      const u = mv(W('blk.0.ffn_up.weight'), h2, 12);
      const a = mv(W('blk.0.ffn_gate.weight'), h2, 12).map((g, i) => geluTanh(g) * u[i]);
      const x2 = add(x1, rms(mv(W('blk.0.ffn_down.weight'), a, dim), W('blk.0.post_ffw_norm.weight'), eps));
      return mv(E, rms(x2, W('output_norm.weight'), eps), t.config.vocabSize).map((l) => fcap * Math.tanh(l / fcap));
    };
    const ref = new ReferenceModel(t.config, t.weights);
    for (let p = 0; p < 3; p++) expect(maxDiff(ref.step(TOKENS[p], p), step(TOKENS[p], p))).toBeLessThan(1e-12);
  });

  it('olmo2: no pre-norms; each branch is post-normed before its residual add', async () => {
    // At position 0 attention returns V itself, so the layer is x + pn(Wo·Wv·x), then + pn(ffn(·)).
    const eps = 1e-6, dim = 8;
    const t = await tinyModel({ arch: 'olmo2', dim, layers: 1, heads: 2, kvHeads: 2, ffn: 12, eps, seed: 6 });
    const W = (n: string) => t.weights.get(n)!;
    const x = Array.from(W('token_embd.weight').subarray(7 * dim, 8 * dim));
    const x1 = add(x, rms(mv(W('blk.0.attn_output.weight'), mv(W('blk.0.attn_v.weight'), x, dim), dim), W('blk.0.post_attention_norm.weight'), eps));
    const u = mv(W('blk.0.ffn_up.weight'), x1, 12);
    const a = mv(W('blk.0.ffn_gate.weight'), x1, 12).map((g, i) => silu(g) * u[i]);
    const x2 = add(x1, rms(mv(W('blk.0.ffn_down.weight'), a, dim), W('blk.0.post_ffw_norm.weight'), eps));
    const want = mv(W('output.weight'), rms(x2, W('output_norm.weight'), eps), t.config.vocabSize);
    expect(maxDiff(new ReferenceModel(t.config, t.weights).step(7, 0), want)).toBeLessThan(1e-12);
  });

  it("gemma: the embedding is scaled by √dim before the first norm (visible through a large eps)", async () => {
    // Zeroed branch outputs leave logits = E·norm(√d·e); with eps = 1 the norm no longer cancels the scale.
    const dim = 16;
    const t = await tinyModel({ arch: 'gemma', dim, layers: 2, heads: 2, kvHeads: 1, ffn: 8, eps: 1, seed: 7, edit: zeroBranches });
    const E = t.weights.get('token_embd.weight')!;
    const e = Array.from(E.subarray(9 * dim, 10 * dim), (v) => v * Math.sqrt(dim));
    const want = mv(E, rms(e, t.weights.get('output_norm.weight')!, 1), t.config.vocabSize);
    const got = new ReferenceModel(t.config, t.weights).step(9, 0);
    expect(maxDiff(got, want)).toBeLessThan(1e-12);
    expect(maxDiff(got, mv(E, rms(e.map((v) => v / Math.sqrt(dim)), t.weights.get('output_norm.weight')!, 1), t.config.vocabSize))).toBeGreaterThan(1e-3);
  });
});

/** Zeroes attn_output and ffn_down: every layer passes the residual stream through unchanged. */
function zeroBranches(name: string, d: Float32Array) {
  if (/attn_output|ffn_down/.test(name)) d.fill(0);
}

describe('reference: equivalences between families', () => {
  it('phi3 fused attn_qkv and gate|up ffn_up equal qwen2 (also NEOX, SwiGLU) with the rows split', async () => {
    const shape = { dim: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 12, seed: 8 } as const;
    const phi = await tinyModel({ arch: 'phi3', ...shape });
    const qwen = await tinyModel({ arch: 'qwen2', ...shape, qkvBias: false });
    const w = new Map(qwen.weights);
    const rows = (t: Float32Array, from: number, n: number) => t.slice(from * shape.dim, (from + n) * shape.dim);
    for (const [name, data] of phi.weights) {
      const m = /^blk\.(\d+)\.(attn_qkv|ffn_up)\.weight$/.exec(name);
      if (!m) w.set(name, data);
      else if (m[2] === 'attn_qkv') {
        w.set(`blk.${m[1]}.attn_q.weight`, rows(data, 0, 16));
        w.set(`blk.${m[1]}.attn_k.weight`, rows(data, 16, 8));
        w.set(`blk.${m[1]}.attn_v.weight`, rows(data, 24, 8));
      } else {
        w.set(`blk.${m[1]}.ffn_gate.weight`, rows(data, 0, 12)); // first half: the gate (ggml_swiglu)
        w.set(`blk.${m[1]}.ffn_up.weight`, rows(data, 12, 12));
      }
    }
    expect(maxDiff(lastLogits(new ReferenceModel(phi.config, phi.weights), TOKENS), lastLogits(new ReferenceModel(qwen.config, w), TOKENS))).toBeLessThan(1e-10);
  });

  it("granite's embedding, residual, attention and logit scales equal llama with the weights scaled", async () => {
    const [e, r, a, L] = [3, 0.5, 0.2, 4];
    const shape: Omit<TinySpec, 'arch'> = { dim: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 12, seed: 9 };
    const g = await tinyModel({
      arch: 'granite', ...shape,
      extra: [kv.f32('granite.embedding_scale', e), kv.f32('granite.residual_scale', r), kv.f32('granite.attention.scale', a), kv.f32('granite.logit_scale', L)],
    });
    // Q is linear in attn_q (no q-norm), each branch in attn_output / ffn_down, the input in token_embd (output untied).
    const ll = await tinyModel({
      arch: 'llama', ...shape,
      edit: (n, d) => {
        const k = n === 'token_embd.weight' ? e : /attn_output|ffn_down/.test(n) ? r : /attn_q\./.test(n) ? a * Math.sqrt(4) : 1;
        for (let i = 0; i < d.length; i++) d[i] *= k;
      },
    });
    const got = lastLogits(new ReferenceModel(g.config, g.weights), TOKENS);
    const want = lastLogits(new ReferenceModel(ll.config, ll.weights), TOKENS).map((v) => v / L);
    expect(maxDiff(got, want)).toBeLessThan(1e-5); // f32 rounding of the scaled weights
  });

  it('GQA: query head h reads kv head ⌊h / group⌋, like duplicating each kv head group times', async () => {
    const shape = { arch: 'llama', dim: 16, layers: 2, heads: 4, ffn: 12, seed: 10 } as const;
    const gqa = await tinyModel({ ...shape, kvHeads: 2 });
    const mha = await tinyModel({ ...shape, kvHeads: 4 });
    const w = new Map(gqa.weights);
    for (const [name, d] of gqa.weights) {
      if (!/attn_[kv]\.weight/.test(name)) continue;
      const dup = new Float32Array(4 * 4 * 16); // kv head j → heads 2j, 2j+1 (4 rows of 16 each)
      for (let h = 0; h < 4; h++) dup.set(d.subarray((h >> 1) * 64, ((h >> 1) + 1) * 64), h * 64);
      w.set(name, dup);
    }
    expect(maxDiff(lastLogits(new ReferenceModel(gqa.config, gqa.weights), TOKENS), lastLogits(new ReferenceModel(mha.config, w), TOKENS))).toBeLessThan(1e-12);
  });
});

describe('reference: windows, soft-caps, NoPE', () => {
  const gemma2 = (layers: number, extra = [kv.u32('gemma2.attention.sliding_window', 3)]) =>
    tinyModel({ arch: 'gemma2', dim: 16, layers, heads: 2, kvHeads: 1, ffn: 12, seed: 21, std: 0.4, extra });

  it('a window at least as long as the sequence equals no window; a shorter one changes the logits', async () => {
    const t = await gemma2(2);
    const run = (windows: number[]) => lastLogits(new ReferenceModel(t.config, t.weights, { windows }), TOKENS);
    expect(new ReferenceModel(t.config, t.weights).windows).toEqual([3, 0]);
    expect(run([TOKENS.length, TOKENS.length])).toEqual(run([0, 0]));
    expect(maxDiff(run([3, 0]), run([0, 0]))).toBeGreaterThan(1e-3);
  });

  it('window 1: every token sees only itself, so its logits do not depend on its position or the past', async () => {
    const t = await gemma2(2);
    const m = new ReferenceModel(t.config, t.weights, { windows: [1, 1] });
    const alone = new ReferenceModel(t.config, t.weights, { windows: [1, 1] }).step(TOKENS.at(-1)!, 0);
    expect(maxDiff(lastLogits(m, TOKENS), alone)).toBeLessThan(1e-12);
  });

  it('window 2 in one layer: position p sees p−1 and p only, and RoPE is relative, so a fresh 2-token run agrees', async () => {
    const t = await gemma2(1);
    const m = new ReferenceModel(t.config, t.weights, { windows: [2] });
    const fresh = new ReferenceModel(t.config, t.weights, { windows: [2] });
    expect(maxDiff(lastLogits(m, TOKENS), lastLogits(fresh, TOKENS.slice(-2)))).toBeLessThan(1e-9);
  });

  it('a huge soft-cap equals none; a small one bounds the logits', async () => {
    const t = await gemma2(2);
    const plan = new ReferenceModel(t.config, t.weights).plan;
    expect([plan.attnSoftcap, plan.finalSoftcap]).toEqual([50, 30]); // Gemma 2's defaults when the keys are absent
    const run = (attnSoftcap: number, finalSoftcap: number) => lastLogits(new ReferenceModel(t.config, t.weights, { plan: { ...plan, attnSoftcap, finalSoftcap } }), TOKENS);
    const none = run(0, 0);
    expect(maxDiff(run(1e7, 1e7), none)).toBeLessThan(1e-8);
    expect(maxDiff(run(0.5, 0), none)).toBeGreaterThan(1e-3);
    const capped = run(0, 1.5);
    expect(Math.max(...capped.map(Math.abs))).toBeLessThan(1.5);
    expect(maxDiff(capped, none.map((v) => 1.5 * Math.tanh(v / 1.5)))).toBeLessThan(1e-12);
  });

  it("smollm3's 4th layer has no RoPE: alone, its output ignores the order of earlier tokens (llama's does not)", async () => {
    const make = (arch: string) => tinyModel({ arch, dim: 16, layers: 4, heads: 4, kvHeads: 2, ffn: 12, seed: 22, edit: (n, d) => n.startsWith('blk.3.') || zeroBranches(n, d) });
    const perm = [TOKENS[2], TOKENS[0], TOKENS[1], ...TOKENS.slice(3)];
    const smol = await make('smollm3');
    expect(new ReferenceModel(smol.config, smol.weights).layerRope).toEqual([0, 0, 0, -1]);
    const s = (toks: number[]) => lastLogits(new ReferenceModel(smol.config, smol.weights), toks);
    expect(maxDiff(s(TOKENS), s(perm))).toBeLessThan(1e-12);
    const llama = await make('llama');
    const l = (toks: number[]) => lastLogits(new ReferenceModel(llama.config, llama.weights), toks);
    expect(maxDiff(l(TOKENS), l(perm))).toBeGreaterThan(1e-4);
  });

  it('trace reports the intermediate vectors under llama.cpp names, ending with the returned logits', async () => {
    const t = await tinyModel({ arch: 'qwen3', dim: 16, layers: 2, heads: 2, kvHeads: 1, ffn: 8, seed: 24 });
    const seen: string[] = [];
    let last: Float64Array | undefined;
    const m = new ReferenceModel(t.config, t.weights, { trace: (name, layer, v) => { seen.push(`${name}@${layer}`); last = v; } });
    const logits = m.step(3, 0);
    expect(seen).toEqual(['inp_scaled@-1', ...[0, 1].flatMap((l) => ['Qcur', 'Kcur', 'Vcur', 'kqv_out', 'ffn_inp', 'ffn_out', 'l_out'].map((n) => `${n}@${l}`)), 'result_norm@-1', 'result_output@-1']);
    expect(last).toBe(logits);
  });

  it('ReferenceLlama still accepts a Config whose ropeScaling predates YaRN (type, factor, originalContextLength only)', async () => {
    const t = await tinyModel({ arch: 'llama', dim: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 8, seed: 23 });
    const old = { ...t.config, ropeScaling: { type: 'linear', factor: 2, originalContextLength: 0 } } as unknown as Config;
    const full: Config = { ...t.config, ropeScaling: { ...t.config.ropeScaling, factor: 2 } };
    expect(lastLogits(new ReferenceLlama(old, t.weights), TOKENS)).toEqual(lastLogits(new ReferenceModel(full, t.weights), TOKENS));
  });
});
