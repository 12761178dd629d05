// StepProfiler: one timed pass per step, totals per label across submits, and
// a clear error past its capacity.
import { describe, expect, it } from 'vitest';
import { StepProfiler } from '../../src/gpu/profiler.ts';
import { f32Buffer, getTestEngine } from './fixture.ts';

const engine = await getTestEngine();
const timed = engine && StepProfiler.available(engine);

describe.skipIf(!timed)('StepProfiler', () => {
  it('times each labelled step, sums labels across submits, refuses more steps than its capacity', async () => {
    const e = engine!;
    const src = f32Buffer(e, new Float32Array(4096).fill(1));
    const dst = f32Buffer(e, new Float32Array(4096));
    const pipe = await e.pipeline({ kind: 'profiler-test' }, e.shader('copy'), { WG: 8 });
    const bg = e.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }] });
    const p = new StepProfiler(e, 2);
    for (let submit = 0; submit < 2; submit++) {
      const enc = e.device.createCommandEncoder();
      let pass = enc.beginComputePass();
      for (const label of ['a', 'b']) {
        pass = p.next(enc, pass, label);
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(4);
      }
      expect(p.pending).toBe(true);
      if (submit === 1) expect(() => p.next(enc, pass, 'c')).toThrow(/more than 2 profiled steps/);
      else pass.end();
      p.resolve(enc);
      e.device.queue.submit([enc.finish()]);
      await p.collect();
      expect(p.pending).toBe(false);
    }
    const t = p.take();
    expect([...t.keys()]).toEqual(['a', 'b']);
    for (const v of t.values()) {
      expect(v.count).toBe(2);
      expect(v.ms).toBeGreaterThanOrEqual(0);
    }
    expect(p.take().size).toBe(0);
    p.destroy();
    e.destroyBuffer(src);
    e.destroyBuffer(dst);
    e.check();
  });
});
