import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/gpu/engine.ts';
import { pollGapMs, quietly } from '../../src/gpu/poll.ts';

const soft = { adapter: { software: true, backend: 'vulkan' } } as Engine;
const hard = { adapter: { software: false, backend: 'vulkan' } } as Engine;
const browser = { adapter: { software: true, backend: 'browser' } } as Engine;
const tick = () => new Promise<void>((r) => setImmediate(r));

describe('quietly (throttled binding poll)', () => {
  it('throttles setImmediate only while a wait on a software adapter is pending, then restores it', async () => {
    const orig = globalThis.setImmediate;
    let inside: typeof setImmediate | undefined;
    const v = await quietly(soft, 0.1, async () => {
      inside = globalThis.setImmediate;
      await tick(); // callbacks scheduled through the throttled version still run
      return 7;
    });
    expect(v).toBe(7);
    expect(inside).not.toBe(orig);
    expect(globalThis.setImmediate).toBe(orig);
  });

  it('leaves setImmediate alone on a hardware adapter and under a browser WebGPU', async () => {
    const orig = globalThis.setImmediate;
    await quietly(hard, 0.1, async () => expect(globalThis.setImmediate).toBe(orig));
    await quietly(browser, 0.1, async () => expect(globalThis.setImmediate).toBe(orig));
  });

  it('nested and overlapping waits share one patch and restore it once, also on a rejection', async () => {
    const orig = globalThis.setImmediate;
    const a = quietly(soft, 0.1, async () => {
      await tick();
      await tick();
    });
    const b = quietly(soft, 0.1, async () => {
      await tick();
      throw new Error('boom');
    });
    await expect(b).rejects.toThrow('boom');
    expect(globalThis.setImmediate).not.toBe(orig); // a is still pending
    await a;
    expect(globalThis.setImmediate).toBe(orig);
  });

  it('sleeps 1% of the expected wait, within 0.1-1 ms', () => {
    expect(pollGapMs(0)).toBe(0.1);
    expect(pollGapMs(20)).toBeCloseTo(0.2);
    expect(pollGapMs(500)).toBe(1);
  });
});
