// greedyAgreement on hand-made llama.cpp results: it needs no binary, so these run
// everywhere and pin the judging rules the oracle tests rely on.
import { describe, expect, it } from 'vitest';
import { type GreedyResult, greedyAgreement } from './llama-cpp.ts';

// Three steps; step 1 is a near tie (7 vs 8: gap 0.2), step 2 a clear choice (9 vs 4: gap 3).
const theirs: GreedyResult = {
  ids: [5, 7, 9],
  steps: [
    { id: 5, top: [[5, 0], [6, -1.5]] },
    { id: 7, top: [[7, 0], [8, -0.2], [3, -2]] },
    { id: 9, top: [[9, 0], [4, -3]] },
  ],
};

describe('greedyAgreement', () => {
  it('identical ids agree', () => {
    expect(greedyAgreement([5, 7, 9], theirs)).toMatchObject({ ok: true, divergeAt: -1 });
  });

  it('a first divergence at a near tie is accepted, with the gap reported', () => {
    const a = greedyAgreement([5, 8, 1], theirs); // after the divergence the texts differ: not judged
    expect(a).toMatchObject({ ok: true, divergeAt: 1 });
    expect(a.gap).toBeCloseTo(0.2, 12);
    expect(greedyAgreement([5, 8], theirs, 0.1).ok).toBe(false); // tolerance is honoured
  });

  it('a divergence at a clear choice, or to an id outside the top, is rejected', () => {
    expect(greedyAgreement([5, 3], theirs)).toMatchObject({ ok: false, divergeAt: 1, gap: 2 });
    const out = greedyAgreement([5, 7, 100], theirs);
    expect(out).toMatchObject({ ok: false, divergeAt: 2 });
    expect(out.gap).toBe(Number.POSITIVE_INFINITY);
    expect(out.why).toMatch(/step 2: ours 100, llama\.cpp 9/);
  });

  it('a prefix of the other is a length mismatch, not agreement', () => {
    expect(greedyAgreement([5, 7], theirs)).toMatchObject({ ok: false, divergeAt: 2 });
    expect(greedyAgreement([5, 7, 9, 2], theirs)).toMatchObject({ ok: false, divergeAt: 3 });
  });
});
