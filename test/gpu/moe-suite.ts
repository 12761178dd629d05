// The MoE kernels (router.ts, moe.ts) against the float64 reference
// (moe-reference.ts) on fresh random data with awkward shapes: 5, 6 and 128
// experts, top-1/2/3/8, 37 rows per expert (no multiple of any workgroup or
// tile), 11 tokens whose choices repeat experts, expert weights split over
// bindings by whole experts, inputs per token (gate/up) and per pair (down),
// the weighted sum fused into decode and as its own dispatch after prefill,
// each adding into a residual; and Qwen2-MoE's sigmoid-gated add of the
// shared expert (a row length and width no workgroup divides, 11 tokens and 1,
// gates from near 0 to near 1).
import { describe, expect, it } from 'vitest';
import type { Engine, EngineOptions } from '../../src/gpu/engine.ts';
import { createMoeProduct, createSigmoidGateAdd } from '../../src/gpu/moe.ts';
import { createRouter, type Gating, MOE_TILE, type RoutesLayout, routesLayout } from '../../src/gpu/router.ts';
import { destroyWeight, uploadTensor } from '../../src/gpu/weights.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { f32Buffer, getTestEngine, memGguf, nmse, paramsBuffer, randomTensor, readF32, rng } from './fixture.ts';
import { refCombine, refPairs, refRoute, refSigmoidGateAdd } from './moe-reference.ts';

const NT = 11;
const ROWS = 37;
const NMSE_BUDGET = 1e-9;

const ROUTER_CASES: { E: number; k: number; gating: Gating; normalize: boolean; scale: number; bias: boolean; n: number }[] = [
  { E: 6, k: 2, gating: 'softmax', normalize: true, scale: 1, bias: false, n: NT }, // Qwen3-MoE, Mixtral
  { E: 5, k: 3, gating: 'softmax', normalize: false, scale: 1, bias: false, n: NT }, // OLMoE
  { E: 5, k: 3, gating: 'softmax_weight', normalize: false, scale: 1, bias: true, n: NT }, // gpt-oss
  { E: 7, k: 1, gating: 'sigmoid', normalize: false, scale: 2.5, bias: false, n: 40 }, // 40 pairs on 7 experts: runs longer than a tile
  { E: 128, k: 8, gating: 'softmax', normalize: true, scale: 1, bias: false, n: 3 }, // more experts than the workgroup
  { E: 6, k: 2, gating: 'softmax', normalize: true, scale: 1, bias: false, n: 1 }, // decode: no grouping
];

// nt 40 × top-3 of 5: ~24 pairs per expert, so experts span two router tiles (and several matmul token tiles).
const PRODUCT_CASES: { type: GgmlType; cols: number; E: number; k: number; nt: number }[] = [
  { type: GgmlType.Q8_0, cols: 96, E: 6, k: 2, nt: NT },
  { type: GgmlType.Q4_K, cols: 512, E: 5, k: 3, nt: NT },
  { type: GgmlType.MXFP4, cols: 96, E: 6, k: 2, nt: NT },
  { type: GgmlType.MXFP4, cols: 64, E: 5, k: 3, nt: 40 },
];

// GPUBufferUsage exists once an engine was created (Dawn installs the globals).
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

async function run(e: Engine, params: GPUBuffer, n: number, f: (pass: GPUComputePassEncoder) => void): Promise<void> {
  e.device.queue.writeBuffer(params, 0, new Uint32Array([n, 0, 0, 0]));
  const enc = e.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  f(pass);
  pass.end();
  e.device.queue.submit([enc.finish()]);
  await e.device.queue.onSubmittedWorkDone();
  e.check();
}

async function readU32(e: Engine, b: GPUBuffer, words: number): Promise<Uint32Array> {
  return new Uint32Array((await readF32(e, b, words * 4)).buffer);
}

/** The grouping for n tokens: every pair listed once under its expert, tiles of ≤ MOE_TILE pairs of one expert, experts in order. */
function checkGrouping(routes: Uint32Array, L: RoutesLayout, n: number): void {
  const np = n * L.k;
  const ids = routes.subarray(0, np);
  const list = Array.from(routes.subarray(2 * L.m, 2 * L.m + np));
  expect([...list].sort((a, b) => a - b)).toEqual(Array.from({ length: np }, (_, i) => i));
  const counts = new Array(L.nExperts).fill(0);
  for (const e of ids) counts[e]++;
  const nTiles = routes[3 * L.m];
  expect(nTiles).toBe(counts.reduce((s, c) => s + Math.ceil(c / MOE_TILE), 0));
  let next = 0;
  let lastE = -1;
  for (let i = 0; i < nTiles; i++) {
    const td = routes[3 * L.m + 1 + 2 * i];
    const first = routes[3 * L.m + 2 + 2 * i];
    const e = td & 0xffff;
    const cnt = td >>> 16;
    expect(first, 'tiles cover the list in order').toBe(next);
    expect(e).toBeGreaterThanOrEqual(lastE);
    expect(cnt).toBeGreaterThan(0);
    expect(cnt).toBeLessThanOrEqual(MOE_TILE);
    for (let j = 0; j < cnt; j++) expect(ids[list[first + j]]).toBe(e);
    next += cnt;
    lastE = e;
  }
  expect(next).toBe(np);
}

export function moeSuite(paths: [string, EngineOptions][]): void {
  for (const [pathName, opts] of paths) {
    const enginePromise = getTestEngine(opts, { optional: opts.backend === 'opengles' });
    describe(`MoE kernels (${pathName})`, async () => {
      const engine = await enginePromise;

      it.skipIf(!engine).each(ROUTER_CASES)('router: $gating E=$E top-$k norm=$normalize scale=$scale bias=$bias, $n tokens', async (c) => {
        const e = engine!;
        const rand = rng(c.E * 100 + c.k * 10 + c.n);
        const logits = new Float32Array(c.n * c.E).map(() => (rand() * 2 - 1) * 4);
        const bias = c.bias ? new Float32Array(c.E).map(() => rand() - 0.5) : undefined;
        const L = routesLayout(c.E, c.k, c.n);
        const lb = f32Buffer(e, new Float32Array([0, 0, 0, 0, ...logits])); // at a 16-byte offset
        const bb = bias ? f32Buffer(e, bias) : undefined;
        const routes = e.createBuffer('activations', 'routes', L.words * 4, storage());
        const params = paramsBuffer(e, c.n);
        const router = await createRouter(e, { logits: lb, logitsOffset: 16, bias: bb, routes, params, maxTokens: c.n, nExperts: c.E, k: c.k, gating: c.gating, normalize: c.normalize, scale: c.scale });
        await run(e, params, c.n, (p) => router.encode(p, c.n));
        const got = await readU32(e, routes, L.words);
        const ref = refRoute(logits, c.n, c.E, c.k, c.gating, c.normalize, c.scale, bias);
        expect(Array.from(got.subarray(0, c.n * c.k))).toEqual(Array.from(ref.ids));
        const w = new Float32Array(got.buffer, L.m * 4, c.n * c.k);
        for (let i = 0; i < c.n * c.k; i++) expect(Math.abs(w[i] - ref.weights[i]), `weight ${i}`).toBeLessThan(2e-6 * Math.max(1, ref.weights[i]));
        if (c.normalize) for (let t = 0; t < c.n; t++) expect(Math.abs(w.subarray(t * c.k, (t + 1) * c.k).reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-6);
        if (c.n > 1) checkGrouping(got, L, c.n);
        for (const b of [lb, routes, params, ...(bb ? [bb] : [])]) e.destroyBuffer(b);
      });

      it.skipIf(!engine).each(PRODUCT_CASES.map((c) => ({ ...c, name: typeInfo(c.type)!.name })))('$name ×$cols: $E experts top-$k, decode and prefill ($nt tokens)', async ({ type, cols, E, k, nt: NT }) => {
        const e = engine!;
        const ti = typeInfo(type)!;
        const rand = rng(type * 1000 + cols + E);
        const bytes = randomTensor(type, E * ROWS, cols, rand);
        const wref = dequantize(type, bytes, E * ROWS * cols);
        const file = memGguf([{ name: 'ffn_exps', type: ti, dims: [cols, ROWS, E], data: bytes }]);
        const expertBytes = ROWS * (cols / ti.blockElems) * ti.blockBytes;
        // Two experts per binding: 3 parts; chunks of 8 rows cross expert boundaries.
        const w = await uploadTensor(e, file, file.tensors[0], { maxBindingBytes: 2 * expertBytes + 16, chunkBytes: 8 * (expertBytes / ROWS) });
        expect([w.experts, w.expertRows]).toEqual([E, ROWS]);
        expect(w.parts.map((p) => [p.firstRow, p.rows])).toEqual(Array.from({ length: Math.ceil(E / 2) }, (_, i) => [2 * i * ROWS, Math.min(2, E - 2 * i) * ROWS]));

        // Routes from the GPU router (softmax, normalised), checked against the reference.
        const L = routesLayout(E, k, NT);
        const logits = new Float32Array(NT * E).map(() => rand() * 6 - 3);
        const lb = f32Buffer(e, logits);
        const routes = e.createBuffer('activations', 'routes', L.words * 4, storage());
        const params = paramsBuffer(e, NT);
        const router = await createRouter(e, { logits: lb, routes, params, maxTokens: NT, nExperts: E, k, gating: 'softmax', normalize: true });
        const ref = refRoute(logits, NT, E, k, 'softmax', true, 1);
        const used = new Set(ref.ids);
        expect(used.size, 'tokens share experts').toBeLessThan(NT * k);

        // gate/up-like: x per token → pairs. down-like: x per pair → pairs, and the weighted sum into a residual.
        const x = new Float32Array(NT * cols).map(() => rand() * 2 - 1);
        const xp = new Float32Array(NT * k * cols).map(() => rand() * 2 - 1);
        const out0 = new Float32Array(NT * ROWS).map(() => rand() * 2 - 1);
        const xb = f32Buffer(e, x);
        const xpb = f32Buffer(e, xp);
        const yb = e.createBuffer('activations', 'y', (8 + NT * k * ROWS) * 4, storage()); // y at an offset of 8 floats
        const y2 = e.createBuffer('activations', 'y2', NT * k * ROWS * 4, storage());
        const out = f32Buffer(e, out0);
        const up = await createMoeProduct(e, w, { x: xb, y: yb, yOffset: 32, routes, layout: L, params });
        const down = await createMoeProduct(e, w, { x: xpb, xPerPair: true, y: y2, routes, layout: L, params, combine: { out, accumulate: true } });
        // The same products with the matvec for every token count (same pipelines).
        const upMv = await createMoeProduct(e, w, { x: xb, y: yb, yOffset: 32, routes, layout: L, params, matvecMaxTokens: NT });
        const downMv = await createMoeProduct(e, w, { x: xpb, xPerPair: true, y: y2, routes, layout: L, params, combine: { out, accumulate: true }, matvecMaxTokens: NT });
        const refUp = refPairs(wref, ROWS, cols, x, false, ref, NT, k);
        const refDownPairs = refPairs(wref, ROWS, cols, xp, true, ref, NT, k);
        const refDown = refCombine(refDownPairs, ref, NT, k, ROWS, out0);

        const errs: Record<string, number> = {};
        const zeros = new Float32Array(8 + NT * k * ROWS);
        for (const [n, mvAll] of [[1, false], [2, false], [NT, false], [NT, true]] as const) {
          const tag = `n=${n}${mvAll ? ' matvec' : ''}`;
          e.device.queue.writeBuffer(out, 0, out0);
          e.device.queue.writeBuffer(yb, 0, zeros);
          await run(e, params, n, (p) => {
            router.encode(p, n);
            (mvAll ? upMv : up).encode(p, n);
            (mvAll ? downMv : down).encode(p, n);
          });
          const gotUp = (await readF32(e, yb, (8 + n * k * ROWS) * 4)).subarray(8);
          const gotOut = await readF32(e, out, NT * ROWS * 4);
          errs[`pairs ${tag}`] = nmse(gotUp, refUp.subarray(0, n * k * ROWS));
          errs[`sum ${tag}`] = nmse(gotOut.subarray(0, n * ROWS), refDown.subarray(0, n * ROWS));
          expect(Array.from(gotOut.subarray(n * ROWS)), 'rows past nTokens untouched').toEqual(Array.from(out0.subarray(n * ROWS)));
          if (n > 1 && !mvAll) errs[`down pairs ${tag}`] = nmse(await readF32(e, y2, n * k * ROWS * 4), refDownPairs.subarray(0, n * k * ROWS));
        }
        console.log(`${pathName.padEnd(12)} ${ti.name.padEnd(6)} ×${cols} E=${E} k=${k}: ${Object.entries(errs).map(([a, v]) => `${a} ${v.toExponential(1)}`).join(', ')}`);
        for (const [what, v] of Object.entries(errs)) expect(v, what).toBeLessThan(NMSE_BUDGET);
        for (const b of [lb, routes, params, xb, xpb, yb, y2, out]) e.destroyBuffer(b);
        destroyWeight(e, w);
      });

      it.skipIf(!engine).each([
        { dim: 150, rows: 37, nt: NT },
        { dim: 2048, rows: 2048, nt: 3 }, // Qwen1.5-MoE's width: more than any workgroup's stride
      ])('sigmoid gate add: gate over $dim, rows of $rows, $nt tokens and 1', async ({ dim, rows, nt }) => {
        const e = engine!;
        const rand = rng(dim + rows);
        // Gate logits over about ±6: σ from 0.0025 to 0.9975.
        const g = new Float32Array(nt * dim).map(() => rand() * 2 - 1);
        const w = new Float32Array(dim).map(() => (rand() * 2 - 1) * (6 / Math.sqrt(dim / 3)));
        const y = new Float32Array(nt * rows).map(() => rand() * 2 - 1);
        const out0 = new Float32Array(nt * rows).map(() => rand() * 2 - 1);
        const [gb, wb, yb, out] = [f32Buffer(e, g), f32Buffer(e, w), f32Buffer(e, y), f32Buffer(e, out0)];
        const params = paramsBuffer(e, nt);
        const k = await createSigmoidGateAdd(e, { params, g: gb, w: wb, y: yb, out, dim, n: rows, maxTokens: nt });
        for (const n of [nt, 1]) {
          e.device.queue.writeBuffer(out, 0, out0);
          await run(e, params, n, (p) => k.encode(p, n));
          const got = await readF32(e, out, nt * rows * 4);
          const err = nmse(got.subarray(0, n * rows), refSigmoidGateAdd(g, w, y, out0, n, dim, rows));
          expect(err, `n=${n}`).toBeLessThan(1e-12);
          expect(Array.from(got.subarray(n * rows)), 'rows past nTokens untouched').toEqual(Array.from(out0.subarray(n * rows)));
        }
        await expect(createSigmoidGateAdd(e, { params, g: gb, w: wb, y: yb, out: yb, dim, n: rows, maxTokens: nt })).rejects.toThrow(/out must be a buffer of its own/);
        for (const b of [gb, wb, yb, out, params]) e.destroyBuffer(b);
      });
    });
  }
}
