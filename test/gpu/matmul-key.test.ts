// Pipeline keys say what they build: a matvec with RMSNorm on load and one
// without must never share a key, whatever eps the file gives (a -1 sentinel
// for "no norm" once collided with eps = -1).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMatmul } from '../../src/gpu/matmul.ts';
import { destroyWeight, uploadTensor } from '../../src/gpu/weights.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { getTestEngine, memGguf, randomTensor, rng } from './fixture.ts';

const engine = await getTestEngine();
afterEach(() => vi.restoreAllMocks());

describe.skipIf(!engine)('matvec pipeline keys', () => {
  it('differ between no norm and a norm of any eps, and name the eps', async () => {
    const e = engine!;
    const file = memGguf([{ name: 'w', type: typeInfo(GgmlType.F32)!, dims: [64, 32], data: randomTensor(GgmlType.F32, 32, 64, rng(5)) }]);
    const w = await uploadTensor(e, file, file.tensors[0]);
    const buf = (n: number, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST) => e.createBuffer('other', 'b', n, usage);
    const x = buf(64 * 4), y = buf(32 * 4), nw = buf(64 * 4), params = buf(16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const keys: string[] = [];
    const spy = vi.spyOn(e, 'pipeline');
    for (const norm of [undefined, { x, w: nw, eps: -1 }, { x, w: nw, eps: 1e-5 }]) {
      spy.mockClear();
      await createMatmul(e, w, { x, y, params, maxTokens: 1, norm });
      keys.push(JSON.stringify(spy.mock.calls[0][0]));
    }
    expect(new Set(keys).size).toBe(3);
    expect(keys[0]).toContain('"normEps":null');
    expect(keys[1]).toContain('"normEps":-1');
    expect(keys[2]).toContain('"normEps":0.00001');
    for (const b of [x, y, nw, params]) e.destroyBuffer(b);
    destroyWeight(e, w);
  });
});
