// Waiting for the GPU without taking a CPU core from it.
//
// Dawn's node binding settles mapAsync / onSubmittedWorkDone by re-arming
// `globalThis.setImmediate` (it looks the global up on every tick) and calling
// ProcessEvents until the work is done: a busy loop on the main thread. On a
// software adapter (lavapipe) the "GPU" is the same CPU cores, so the loop
// takes one of them from the shader threads: on this project's 2-core VM,
// s110m Q4_0 decode went from 45 to 55 tok/s once each tick slept first
// (docs/PERFORMANCE.md). While a quiet wait is pending, every setImmediate
// callback is preceded by a short Atomics.wait: the thread blocks in the
// kernel, so the poll wakes a few thousand times a second instead of spinning.
// Other setImmediate users in the process see at most that gap of delay, and
// only while a wait is pending.
import { promisify } from 'node:util';
import type { Engine } from './engine.ts';

// Made on first use: a page that is not cross-origin isolated has no SharedArrayBuffer.
let cell: Int32Array | undefined;
let depth = 0;
let original: typeof setImmediate | undefined;

/** Milliseconds each poll sleeps for a wait expected to take `expectMs`: 1% of it, within 0.1-1 ms. */
export function pollGapMs(expectMs: number): number {
  return Math.min(1, Math.max(0.1, expectMs / 100));
}

/**
 * Runs `wait` (a promise the binding polls for) with the poll throttled to
 * one tick per `gapMs`. A no-op on hardware adapters, where the poll costs
 * nothing the GPU needs, and outside Node. Nested and concurrent waits share one patch.
 */
export async function quietly<T>(engine: Engine, gapMs: number, wait: () => Promise<T>): Promise<T> {
  // Only Dawn's node binding polls through setImmediate; a browser's WebGPU
  // (even a software one) does not, and its main thread may not block.
  if (!engine.adapter.software || engine.adapter.backend === 'browser' || typeof globalThis.setImmediate !== 'function') return wait();
  if (depth++ === 0) {
    cell ??= new Int32Array(new SharedArrayBuffer(4));
    const c = cell;
    const orig = globalThis.setImmediate;
    original = orig;
    const slow = ((fn: (...args: unknown[]) => void, ...args: unknown[]) =>
      orig(() => {
        Atomics.wait(c, 0, 0, gapMs);
        fn(...args);
      })) as typeof setImmediate;
    Object.defineProperty(slow, promisify.custom, { value: (orig as unknown as Record<symbol, unknown>)[promisify.custom] });
    globalThis.setImmediate = slow;
  }
  try {
    return await wait();
  } finally {
    if (--depth === 0 && original) {
      globalThis.setImmediate = original;
      original = undefined;
    }
  }
}
