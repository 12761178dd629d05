// Engine behaviour: memory accounting and refusals, shader templating, WGSL
// errors named by pipeline, uncaptured errors surfacing through check(), and a
// Node process that exits after destroy().
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GpuError } from '../../src/errors.ts';
import { Engine } from '../../src/gpu/engine.ts';
import { uploadTensor } from '../../src/gpu/weights.ts';
import { GgmlType, typeInfo } from '../../src/quant/table.ts';
import { repoRoot } from '../shared.ts';
import { getTestEngine, memGguf, randomTensor, rng } from './fixture.ts';

describe('Engine', async () => {
  const engine = await getTestEngine();
  it.skipIf(!engine)('counts buffers by category, current and peak', () => {
    const e = engine!;
    const before = e.memory();
    const a = e.createBuffer('kv', 'a', 1000, GPUBufferUsage.STORAGE);
    const b = e.createBuffer('activations', 'b', 4096, GPUBufferUsage.STORAGE);
    const m = e.memory();
    expect(m.byCategory.kv - before.byCategory.kv).toBe(1000);
    expect(m.byCategory.activations - before.byCategory.activations).toBe(4096);
    expect(m.total - before.total).toBe(5096);
    e.destroyBuffer(a);
    e.destroyBuffer(b);
    expect(e.memory().total).toBe(before.total);
    expect(e.memory().peak).toBeGreaterThanOrEqual(before.total + 5096);
  });

  it.skipIf(!engine)('refuses buffers over maxBufferSize with a one-line GpuError', () => {
    const e = engine!;
    expect(() => e.createBuffer('kv', 'huge', e.limits.maxBufferSize + 4, GPUBufferUsage.STORAGE)).toThrow(/maxBufferSize.*lower contextLength \(-c\)/);
  });

  it.skipIf(!engine)('templating replaces placeholders and rejects unknown or unused ones', () => {
    const e = engine!;
    e.addShaderSource('t_test', 'const R: u32 = {{R}}u;');
    expect(e.shader('t_test', { R: 4 })).toBe('const R: u32 = 4u;');
    expect(() => e.shader('t_test')).toThrow(GpuError);
    expect(() => e.shader('t_test', { R: 1, Q: 2 })).toThrow(/no placeholder \{\{Q\}\}/);
    expect(() => e.shader('no_such_shader_xyz')).toThrow(/missing/);
  });

  it.skipIf(!engine)('a WGSL error is a GpuError naming the pipeline key', async () => {
    const e = engine!;
    await expect(e.pipeline({ kind: 'broken', n: 1 }, '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }')).rejects.toThrow(/pipeline \{"kind":"broken","n":1\} failed/);
    const ok = await e.pipeline({ kind: 'ok' }, '@compute @workgroup_size(1) fn main() {}');
    expect(await e.pipeline({ kind: 'ok' }, '@compute @workgroup_size(1) fn main() {}')).toBe(ok);
    expect(ok.label).toBe('{"kind":"ok"}');
    // Cached by what makes it, not by the label alone: other constants or code under the same key build anew.
    const other = await e.pipeline({ kind: 'ok' }, '@compute @workgroup_size(2) fn main() {}');
    expect(other).not.toBe(ok);
    const withC = await e.pipeline({ kind: 'ok' }, 'override C: u32 = 1u; @compute @workgroup_size(1) fn main() { _ = C; }', { C: 2 });
    expect(await e.pipeline({ kind: 'ok' }, 'override C: u32 = 1u; @compute @workgroup_size(1) fn main() { _ = C; }', { C: 3 })).not.toBe(withC);
  });

  it.skipIf(!engine)('check() reports an uncaptured validation error once', async () => {
    const e = engine!;
    e.check();
    // Writing past the end of a buffer is a validation error.
    const b = e.createBuffer('other', 'small', 16, GPUBufferUsage.COPY_DST);
    e.device.queue.writeBuffer(b, 64, new Uint8Array(16));
    await e.device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 50));
    expect(() => e.check()).toThrow(GpuError);
    expect(() => e.check()).not.toThrow();
    e.destroyBuffer(b);
  });

  it.skipIf(!engine)('a memory budget refuses uploads past it', async () => {
    const e = await Engine.create({ memoryBudget: 64 * 1024 });
    try {
      const t = typeInfo(GgmlType.Q8_0)!;
      const file = memGguf([{ name: 'big', type: t, dims: [1024, 128], data: randomTensor(GgmlType.Q8_0, 128, 1024, rng(1)) }]);
      await expect(uploadTensor(e, file, file.tensors[0])).rejects.toThrow(/over the memoryBudget/);
      expect(e.memory().total).toBe(0); // partial parts were freed
    } finally {
      e.destroy();
    }
  });

  it.each([-1, 0, Number.NaN])('refuses memoryBudget %s before opening a device', async (budget) => {
    await expect(Engine.create({ memoryBudget: budget })).rejects.toThrow(/^memoryBudget \S+ is not a positive number of bytes/);
  });

  it.skipIf(!engine)('a destroyed engine and its device are garbage-collected (Dawn kept them through the error handler)', () => {
    const code = `import { Engine } from './src/gpu/engine.ts';
      const refs = [];
      for (let i = 0; i < 6; i++) {
        const e = await Engine.create();
        await e.pipeline({ k: i }, '@compute @workgroup_size(1) fn main() {}');
        refs.push(new WeakRef(e.device));
        e.destroy();
      }
      for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
      console.log('alive', refs.filter((r) => r.deref()).length);`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', code], { cwd: repoRoot, timeout: 60_000, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    const alive = Number(/alive (\d+)/.exec(r.stdout)?.[1]);
    // The last one may still be referenced by a pending callback; before the fix all six stayed.
    expect(alive).toBeLessThanOrEqual(1);
  });

  it.skipIf(!engine)('a Node process exits by itself after destroy()', () => {
    const code = `import { Engine } from './src/gpu/engine.ts'; const e = await Engine.create(); e.createBuffer('other', 'b', 64, GPUBufferUsage.STORAGE); e.destroy(); console.log('done');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: repoRoot, timeout: 30_000, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    expect(r.stdout).toContain('done');
    expect(r.status).toBe(0); // a timeout (kept alive by Dawn) gives status null
  });
});
