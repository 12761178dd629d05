// MoE misuse: each mistake fails at creation (or encode) with one line naming it.
import { describe, expect, it } from 'vitest';
import { GpuError } from '../../src/errors.ts';
import { createMoeProduct } from '../../src/gpu/moe.ts';
import { createRouter, routesLayout } from '../../src/gpu/router.ts';
import { destroyWeight, uploadTensor } from '../../src/gpu/weights.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { f32Buffer, getTestEngine, memGguf, paramsBuffer, randomTensor, rng } from './fixture.ts';

describe('MoE kernels: misuse fails with one line', async () => {
  const engine = await getTestEngine();
  it.skipIf(!engine)('names the problem', async () => {
    const e = engine!;
    const ti = typeInfo(GgmlType.Q8_0)!;
    const data = randomTensor(GgmlType.Q8_0, 4 * 8, 64, rng(5));
    const file = memGguf([{ name: 'exps', type: ti, dims: [64, 8, 4], data }, { name: 'flat', type: ti, dims: [64, 32], data }]);
    // One expert (8 rows × 68 B) cannot be split: a binding smaller than it is refused by name.
    await expect(uploadTensor(e, file, file.tensors[0], { maxBindingBytes: 8 * 68 - 1 })).rejects.toThrow(/exps: one expert \(544 B\) exceeds/);
    const w = await uploadTensor(e, file, file.tensors[0]);
    const flat = await uploadTensor(e, file, file.tensors[1]);
    expect(flat.experts).toBeUndefined();
    const L = routesLayout(4, 2, 3);
    const buf = (n: number) => f32Buffer(e, new Float32Array(n));
    const routes = buf(L.words);
    const params = paramsBuffer(e, 1);
    const x = buf(3 * 2 * 64);
    const y = buf(3 * 2 * 8);
    await expect(createRouter(e, { logits: buf(12), routes, params, maxTokens: 3, nExperts: 4, k: 5, gating: 'softmax' })).rejects.toThrow(/top-5 of 4 experts/);
    await expect(createRouter(e, { logits: buf(11), routes, params, maxTokens: 3, nExperts: 4, k: 2, gating: 'softmax' })).rejects.toThrow(GpuError);
    await expect(createMoeProduct(e, flat, { x, y, routes, layout: L, params })).rejects.toThrow(/flat: the weight is not a 3-D expert tensor/);
    await expect(createMoeProduct(e, w, { x, y, routes, layout: routesLayout(5, 2, 3), params })).rejects.toThrow(/4 experts, but the router chooses among 5/);
    await expect(createMoeProduct(e, w, { x, y: x, routes, layout: L, params })).rejects.toThrow(/separate buffers/);
    const p = await createMoeProduct(e, w, { x, y, routes, layout: L, params });
    const pass = e.device.createCommandEncoder().beginComputePass();
    expect(() => p.encode(pass, 4)).toThrow(/nTokens 4 is outside 1..3/);
    pass.end();
    destroyWeight(e, w);
    destroyWeight(e, flat);
  });
});
