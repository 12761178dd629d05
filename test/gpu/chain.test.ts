// composePhase: how a decode chain (src/gpu/chain.ts) turns an ordinary
// kernel's WGSL into one phase of its shader; createChain's rules for 8-bit-x
// tiles. The chains themselves are checked against the step-by-step decode in
// test/models/llama.test.ts and test/models/sequences.test.ts.
import { describe, expect, it } from 'vitest';
import { type ChainKernel, composePhase, createChain } from '../../src/gpu/chain.ts';
import { destroyWeight, uploadConcat } from '../../src/gpu/weights.ts';
import { q8xBytes } from '../../src/models/tile-matmul.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { getTestEngine, memGguf, paramsBuffer, randomTensor, rng } from './fixture.ts';

const KERNEL = [
  'enable subgroups;',
  'struct Info { rows: u32, cols: u32 }',
  '@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;',
  '@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;',
  '@group(0) @binding(2) var<storage, read_write> y: array<f32>;',
  '@group(0) @binding(3) var<uniform> info: Info;',
  'override WG: u32 = 8u;',
  'var<private> ssq: f32 = 0.0;',
  'fn put(o: u32, v: f32) { y[o + y_base(o)] += v; }',
  'fn y_base(o: u32) -> u32 { return info.rows; }',
  'fn matvec(g: u32) { let q = w[g]; ssq += x[g].w; put(g * WG, f32(q.w) + ssq); }',
].join('\n');

describe('composePhase', () => {
  const out = composePhase(KERNEL, '_k3', { w: 20, info: 21, x: 'acts4', y: { f32of: 'acts4' } });

  it('drops directives and the shared resources, keeps its own at new bindings', () => {
    expect(out).not.toContain('enable subgroups');
    expect(out).not.toMatch(/var<storage, read> x/);
    expect(out).not.toMatch(/var<storage, read_write> y/);
    expect(out).toContain('@group(0) @binding(20) var<storage, read> w_k3: array<vec4<u32>>;');
    expect(out).toContain('@group(0) @binding(21) var<uniform> info_k3: Info_k3;');
  });

  it('suffixes module-scope names wherever they are used as names, not after a dot', () => {
    expect(out).toContain('struct Info_k3 { rows: u32, cols: u32 }');
    expect(out).toContain('override WG_k3: u32 = 8u;');
    expect(out).toContain('var<private> ssq_k3: f32 = 0.0;');
    expect(out).toContain('fn y_base_k3(o: u32) -> u32 { return info_k3.rows; }');
    expect(out).toContain('let q = w_k3[g]; ssq_k3 += acts4[g].w;');
  });

  it('reads and writes an f32 resource as components of the shared vec4 view, nested brackets included', () => {
    expect(out).toContain('fn put_k3(o: u32, v: f32) { acts4[(o + y_base_k3(o)) >> 2u][(o + y_base_k3(o)) & 3u] += v; }');
  });

  it('names an unmapped resource', () => {
    expect(() => composePhase(KERNEL, '_k0', { w: 20, info: 21, x: 'acts4' })).toThrow(/unmapped resource y/);
  });
});

// createChain's 8-bit-x tiles (Q4_0, tile-matmul.ts): a quantize phase goes
// before their phase, which needs the shared records and one x for the phase;
// without them the chain is not made (the step runs its own dispatches).
const engine = await getTestEngine();
describe.skipIf(!engine?.cpuTuning || !engine?.subgroups)('createChain with 8-bit-x tiles', () => {
  it('adds the quantize phase, and declines without records or with two x in one phase; counts the phases against maxPhases', async () => {
    const e = engine!;
    const cols = 64, rows = 64, S = 2;
    const file = memGguf([{ name: 'w', type: typeInfo(GgmlType.Q4_0)!, dims: [cols, rows], data: randomTensor(GgmlType.Q4_0, rows, cols, rng(5)) }]);
    const w = await uploadConcat(e, file, file.tensors, 'w', {});
    const buf = (bytes: number, usage = GPUBufferUsage.STORAGE) => e.createBuffer('activations', 'chain test', bytes, usage);
    const acts = buf(4 * S * (cols + rows) * 4);
    const shared = {
      acts, params: paramsBuffer(e, S), kCache: buf(64), vCache: buf(64), table: buf(64), claims: buf(64), claimBase: 0, seqs: buf(64), q8x: buf(q8xBytes(S, cols)),
    };
    const tile = (xOffset: number): ChainKernel => ({ kind: 'tile', w, tokens: S, io: { x: acts, y: acts, params: shared.params, maxTokens: S, xOffset, yOffset: 4 * S * cols * 4 } });
    // A RoPE phase after it, so that the chain uses every shared binding, as a layer's does.
    const rope: ChainKernel = { kind: 'rope', nHeads: 2, nKvHeads: 2, headDim: 16, ropeDim: 16, kvF16: e.f16, qOff: 0, kOff: 64, vOff: 96, tokens: S };
    const made = await createChain(e, { ...shared, maxPhases: 3 }, [[tile(0)], [rope]], 'ok');
    expect(made).toBeDefined();
    for (const b of made!.buffers) e.destroyBuffer(b);
    expect(await createChain(e, { ...shared, q8x: undefined }, [[tile(0)], [rope]], 'no records')).toBeUndefined();
    expect(await createChain(e, shared, [[tile(0), tile(S * cols * 4)], [rope]], 'two x')).toBeUndefined();
    await expect(createChain(e, { ...shared, maxPhases: 2 }, [[tile(0)], [rope]], 'blk.0')).rejects.toThrow(/internal error: chain blk\.0 has 3 phases, its counters room for 2/);
    e.check();
    for (const b of [acts, shared.params, shared.kCache, shared.vCache, shared.table, shared.claims, shared.seqs, shared.q8x]) e.destroyBuffer(b);
    destroyWeight(e, w);
  });
});
