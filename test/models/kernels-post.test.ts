// The small kernels of the newer model families against CPU references, on
// the three kernel configurations (CPU tuning, GPU tuning, no shader-f16):
// gather × scale (Gemma, Granite), GeGLU (Gemma: ggml-cpu's f16 GELU table),
// bias add (Qwen2), group RMSNorm (Qwen3/Gemma 3 per-head, OLMo2 whole-vector
// q/k norm), residual add with post-norm or scale (Gemma 2/3, OLMo2, Granite),
// and logit scale/softcap (Granite, Gemma 2). Shapes are odd on purpose, with
// rows past nTokens and bytes outside the region that must stay untouched,
// and dispatches past 65535 workgroups (2-D grids).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { createGather } from '../../src/gpu/gather.ts';
import { uploadTensor } from '../../src/gpu/weights.ts';
import { createBiasAdd, createGroupNorm, createLogitsPost, createResidualAdd, createSwiglu } from '../../src/models/kernels.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { f16ToF32, f32ToF16 } from '../../src/quant/half.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { memGguf, randomTensor, rng } from '../gpu/fixture.ts';
import { maxAbsDiff, nmse, paramsBuffer, rand, readF32, runPass, testEngine, upload, zeros } from './gpu-util.ts';

const CONFIGS: [string, EngineOptions][] = [['cpu tuning', {}], ['gpu tuning', { tuning: 'gpu' }], ['no f16', { noF16: true }]];
const F = Math.fround;
const f16round = (x: number) => f16ToF32(f32ToF16(x));

// ggml-cpu's GeGLU (vec.h ggml_vec_geglu_f32 with GGML_GELU_FP16): the GELU of
// x rounded to f16 is looked up in a table of f16(ggml_gelu_f32(h)), computed
// here in ggml's f32 operation order (tanhf ≈ Math.tanh rounded to f32).
const GELU_COEF_A = F(0.044715), SQRT_2_OVER_PI = F(0.7978845608028654);
function ggmlGeluF32(x: number): number {
  const inner = F(F(SQRT_2_OVER_PI * x) * F(1 + F(F(GELU_COEF_A * x) * x)));
  return F(F(0.5 * x) * F(1 + F(Math.tanh(inner))));
}
/** The same GELU in f64 (with ggml's f32 constants): what the kernel rounds to f16. */
const gelu64 = (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x)));
/** table(x)·up: the f16 GELU of the f16 gate, with ggml's ±10 cut-offs; `gelu` is ggml's f32 GELU or the f64 one. */
function geglu(x: number, up: number, gelu: (h: number) => number): number {
  if (x <= -10) return 0;
  if (x >= 10) return F(x * up);
  return F(f16round(gelu(f16round(x))) * up);
}
/** One f16 ulp at |v| (normal range; the subnormal spacing below it). */
const f16ulp = (v: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** -24)), -14) - 10);

function rmsnorm64(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from(x, (v, i) => v * inv * w[i]);
}

/** The fn tanh_safe … } text of a shader. */
const tanhText = (shader: string) => readFileSync(new URL(`../../shaders/${shader}.wgsl`, import.meta.url), 'utf8').match(/fn tanh_safe[\s\S]*?\n}/)?.[0];

describe('tanh_safe', () => {
  it('attention_kv.wgsl holds the same tanh_safe as tanh.wgsl (a decode chain cannot template it in)', () => {
    expect(tanhText('tanh')).toBeDefined();
    expect(tanhText('attention_kv')).toBe(tanhText('tanh'));
  });
});

for (const [config, opts] of CONFIGS) {
  const engine = await testEngine(opts);
  describe.skipIf(!engine)(`post kernels (${config})`, () => {
    const e = engine!;

    // Rows 37 of three formats, split into 3 bindings; ids hit all parts, with a repeat.
    it.each([
      { name: 'F32', type: GgmlType.F32, cols: 67 }, { name: 'Q8_0', type: GgmlType.Q8_0, cols: 96 }, { name: 'Q4_K', type: GgmlType.Q4_K, cols: 512 },
    ])('gather × sqrt(cols) ($name, $cols cols)', async ({ type, cols }) => {
      const ti = typeInfo(type)!, rows = 37;
      const bytes = randomTensor(type, rows, cols, rng(type * 7 + cols));
      const wref = dequantize(type, bytes, rows * cols);
      const file = memGguf([{ name: 'w', type: ti, dims: [cols, rows], data: bytes }]);
      const rb = (cols / ti.blockElems) * ti.blockBytes;
      const w = await uploadTensor(e, file, file.tensors[0], { maxBindingBytes: rb * 14 + 16, chunkBytes: rb * 4 });
      expect(w.parts.length).toBe(3);
      const ids = new Uint32Array([36, 0, 13, 14, 27, 28, 36]);
      const scale = Math.sqrt(cols);
      const out = zeros(e, ids.length * cols * 4);
      const g = await createGather(e, w, { ids: upload(e, ids), out, params: paramsBuffer(e, ids.length, 0), maxTokens: ids.length, scale });
      await runPass(e, (p) => g.encode(p, ids.length));
      const got = await readF32(e, out, ids.length * cols);
      const want = new Float32Array(ids.length * cols);
      ids.forEach((id, t) => { for (let c = 0; c < cols; c++) want[t * cols + c] = F(wref[id * cols + c] * F(scale)); });
      expect(nmse(got, want)).toBeLessThan(1e-12);
      // An f32 row is the stored value times the f32 scale, exactly.
      if (type === GgmlType.F32) expect(Array.from(got)).toEqual(Array.from(want));
    });

    // Every f16 gate value in (-10, 10) once, up = 1: the kernel's table against ggml's and the exact GELU.
    it('geglu: the on-the-fly f16 GELU table against ggml-cpu’s', async () => {
      const gates: number[] = [];
      for (let h = 0; h < 0x10000; h++) {
        const v = f16ToF32(h);
        if (v > -10 && v < 10 && !Object.is(v, -0)) gates.push(v);
      }
      const ffn = gates.length;
      const gu = new Float32Array(2 * ffn);
      gu.set(gates);
      gu.fill(1, ffn);
      const gb = upload(e, gu);
      const k = await createSwiglu(e, { params: paramsBuffer(e, 1, 0), gu: gb, upOffset: ffn * 4, ffnDim: ffn, act: 'gelu' });
      expect(k.label).toBe('geglu');
      await runPass(e, (p) => k.encode(p, 1));
      const got = await readF32(e, gb, ffn);
      // ulps: [vs f16(exact GELU), vs ggml for h ≥ -3, vs ggml for h < -3]; exact: the same three counts.
      const worst = [0, 0, 0], exact = [0, 0, 0], count = [ffn, 0, 0];
      for (let i = 0; i < ffn; i++) {
        const r = [geglu(gates[i], 1, gelu64), geglu(gates[i], 1, ggmlGeluF32)];
        const tail = gates[i] < -3 ? 2 : 1;
        count[tail]++;
        for (const [slot, want] of [[0, r[0]], [tail, r[1]]]) {
          if (got[i] === want) exact[slot]++;
          worst[slot] = Math.max(worst[slot], Math.abs(got[i] - want) / f16ulp(want));
        }
      }
      // The f16 rounding of an accurate f32 GELU: off by one f16 ulp only next to an f16 midpoint.
      expect(worst[0]).toBeLessThanOrEqual(1);
      expect(exact[0] / count[0]).toBeGreaterThan(0.999);
      // ggml's table is the same where its 1 + tanhf(z) does not cancel (h ≥ -3)…
      expect(worst[1]).toBeLessThanOrEqual(1);
      expect(exact[1] / count[1]).toBeGreaterThan(0.999);
      // …and within 2 f16 ulps in the tail (|gelu| < 4e-3), where tanhf's f32 rounding shows in ggml's entries.
      expect(worst[2]).toBeLessThanOrEqual(2);
    });

    // Random gates over ±12 (both cut-offs, ±10 exactly, f16 subnormals), 3 tokens × 173, up past a gap.
    it('geglu over 3 × 173 with the ±10 cut-offs', async () => {
      const ffn = 173, n = 3, gap = 5;
      const g = rand(n * ffn, 41, 12), u = rand(n * ffn, 42, 2);
      g.set([-10, 10, F(-10 + 2 ** -20), F(10 - 2 ** -20), 0, 1e-6, -1e-6, 3e-5], 0);
      const gu = new Float32Array(2 * n * ffn + gap);
      gu.set(g);
      gu.set(u, n * ffn + gap);
      const gb = upload(e, gu);
      const k = await createSwiglu(e, { params: paramsBuffer(e, n, 0), gu: gb, upOffset: (n * ffn + gap) * 4, ffnDim: ffn, act: 'gelu' });
      await runPass(e, (p) => k.encode(p, n));
      const got = await readF32(e, gb, gu.length);
      for (let i = 0; i < n * ffn; i++) {
        const table = geglu(g[i], 1, gelu64);
        // One f16 ulp of the table entry, times |up|, plus the f32 rounding of the product.
        expect(Math.abs(got[i] - geglu(g[i], u[i], gelu64)), `gate ${g[i]}`).toBeLessThanOrEqual(f16ulp(table) * Math.abs(u[i]) * 1.001);
      }
      // The GELU differs from silu on this data, and up stays unchanged.
      expect(maxAbsDiff(got.subarray(0, n * ffn), Array.from(g, (x, i) => (x / (1 + Math.exp(-x))) * u[i]))).toBeGreaterThan(0.1);
      expect(Array.from(got.subarray(n * ffn))).toEqual(Array.from(gu.subarray(n * ffn)));
    });

    it('bias add: 5 of 7 rows × 37 at a 7-float offset, exact f32 adds, the rest untouched', async () => {
      const n = 37, nt = 5, maxT = 7, off = 7;
      const x = rand(off + maxT * n + 3, 51, 3), bias = rand(n, 52, 3);
      const buf = upload(e, x);
      const k = await createBiasAdd(e, { params: paramsBuffer(e, nt, 0), buf, offset: off * 4, bias: upload(e, bias), n });
      await runPass(e, (p) => k.encode(p, nt));
      const want = Float32Array.from(x);
      for (let t = 0; t < nt; t++) for (let i = 0; i < n; i++) want[off + t * n + i] = F(x[off + t * n + i] + bias[i]);
      expect(Array.from(await readF32(e, buf, x.length))).toEqual(Array.from(want));
      await expect(createBiasAdd(e, { params: paramsBuffer(e, nt, 0), buf, offset: 6, bias: upload(e, bias), n })).rejects.toThrow(/multiple of 4/);
    });

    // groups × size at a float offset; [33000 × 3] × 2 tokens is 66000 workgroups, a 2-D grid.
    it.each([
      { groups: 6, size: 10, nt: 3, off: 5, amp: 2 },
      { groups: 1, size: 300, nt: 2, off: 0, amp: 40 },
      { groups: 5, size: 128, nt: 4, off: 3, amp: 0.01 },
      { groups: 33000, size: 3, nt: 2, off: 1, amp: 1 },
    ])('group norm: $nt tokens × $groups groups × $size at offset $off', async ({ groups, size, nt, off, amp }) => {
      const eps = 1e-6, len = nt * groups * size;
      const x = rand(off + len + size, groups + size, amp), w = rand(size, 61, 2);
      x.fill(0, off + size, off + 2 * size); // an all-zero group stays zero (eps keeps it finite)
      const buf = upload(e, x);
      const k = await createGroupNorm(e, { params: paramsBuffer(e, nt, 0), buf, offset: off * 4, w: upload(e, w), groups, size, eps });
      await runPass(e, (p) => k.encode(p, nt));
      const got = await readF32(e, buf, x.length);
      const want = new Float64Array(len);
      for (let gi = 0; gi < nt * groups; gi++) want.set(rmsnorm64(x.subarray(off + gi * size, off + (gi + 1) * size), w, eps), gi * size);
      expect(maxAbsDiff(got.subarray(off, off + len), want)).toBeLessThan(1e-5);
      expect(Array.from(got.subarray(0, off))).toEqual(Array.from(x.subarray(0, off)));
      expect(Array.from(got.subarray(off + len))).toEqual(Array.from(x.subarray(off + len)));
    });

    // 3 of 4 rows; with w: rmsnorm(y)·w (f64 reference); without: the exact f32 x + scale·y.
    it.each([
      { dim: 67, norm: true, scale: 1, amp: 1 },
      { dim: 67, norm: true, scale: 0.5, amp: 50 },
      { dim: 300, norm: false, scale: 0.22, amp: 1 },
      { dim: 300, norm: false, scale: 1, amp: 1 },
    ])('residual add: dim $dim, norm $norm, scale $scale', async ({ dim, norm, scale, amp }) => {
      const nt = 3, maxT = 4, eps = 1e-6;
      const x = rand(maxT * dim, dim + 1, 3), y = rand(maxT * dim, dim + 2, amp), w = rand(dim, dim + 3, 2);
      const xb = upload(e, x);
      const k = await createResidualAdd(e, { params: paramsBuffer(e, nt, 0), x: xb, y: upload(e, y), w: norm ? upload(e, w) : undefined, dim, eps, scale });
      await runPass(e, (p) => k.encode(p, nt));
      const got = await readF32(e, xb, maxT * dim);
      for (let t = 0; t < nt; t++) {
        const xs = x.subarray(t * dim, (t + 1) * dim), ys = y.subarray(t * dim, (t + 1) * dim);
        if (norm) {
          const nv = rmsnorm64(ys, w, eps);
          expect(maxAbsDiff(got.subarray(t * dim, (t + 1) * dim), Array.from(xs, (v, i) => v + scale * nv[i]))).toBeLessThan(1e-5);
        } else {
          expect(Array.from(got.subarray(t * dim, (t + 1) * dim))).toEqual(Array.from(xs, (v, i) => F(v + F(F(scale) * ys[i]))));
        }
      }
      expect(Array.from(got.subarray(nt * dim))).toEqual(Array.from(x.subarray(nt * dim)));
    });

    it.each([
      { name: 'scale 1/6', n: 1001, nt: 3, scale: 1 / 6, softcap: 0, amp: 20 },
      { name: 'softcap 30, saturating', n: 1001, nt: 3, scale: 1, softcap: 30, amp: 400 },
      { name: 'scale 0.5 + softcap 5, last token only (params {1,0,0,0})', n: 777, nt: 1, scale: 0.5, softcap: 5, amp: 60 },
      { name: '2-D grid (4·(2^20+3) values)', n: 2 ** 20 + 3, nt: 4, scale: 1, softcap: 10, amp: 50 },
    ])('logits post: $name', async ({ n, nt, scale, softcap, amp }) => {
      const x = rand((nt + 1) * n, n + nt, amp);
      const xb = upload(e, x);
      const k = await createLogitsPost(e, { params: paramsBuffer(e, nt, 0), x: xb, n, scale, softcap });
      await runPass(e, (p) => k.encode(p, nt));
      const got = await readF32(e, xb, (nt + 1) * n);
      const head = got.subarray(0, nt * n);
      if (softcap === 0) {
        expect(Array.from(head)).toEqual(Array.from(x.subarray(0, nt * n), (v) => F(v * F(scale))));
      } else {
        const want = Array.from(x.subarray(0, nt * n), (v) => softcap * Math.tanh(F(v * F(scale)) / softcap));
        expect(maxAbsDiff(head, want)).toBeLessThan(softcap * 4e-7);
        expect(Math.max(...Array.from(x.subarray(0, 4096), (v) => Math.abs(v * scale) / softcap)), 'tanh saturates').toBeGreaterThan(3);
      }
      expect(Array.from(got.subarray(nt * n)), 'rows ≥ nTokens untouched').toEqual(Array.from(x.subarray(nt * n)));
    });

    // tanh_safe via softcap 1: no overflow at any magnitude, relative accuracy near 0 (both sides of the 0.25 switch).
    it('logits softcap 1 is tanh: accurate near 0, ±1 without NaN up to 3e38', async () => {
      const zs = [0, 1e-30, 1e-7, 1e-3, 0.1, 0.2499, 0.25, 0.2501, 0.5, 1, 2.5, 5, 9, 10, 20, 44, 45, 89, 100, 1e4, 1e10, 3e38];
      const x = Float32Array.from([...zs, ...zs.map((z) => -z)]);
      const xb = upload(e, x);
      const k = await createLogitsPost(e, { params: paramsBuffer(e, 1, 0), x: xb, n: x.length, softcap: 1 });
      await runPass(e, (p) => k.encode(p, 1));
      const got = await readF32(e, xb, x.length);
      x.forEach((z, i) => {
        const want = Math.tanh(z);
        expect(Math.abs(got[i] - want), `tanh(${z})`).toBeLessThanOrEqual(Math.max(Math.abs(want) * 1e-6, 1e-37));
      });
    });
  });
}
