// The sampler against its definition: greedy/argmax, seeded reproducibility, the
// filters (top-k, top-p, min-p), llama.cpp's repetition penalty, the empirical
// distribution of temperature sampling vs softmax, and option validation.
import { describe, expect, it } from 'vitest';
import { GpuError, UsageError } from '../src/errors.ts';
import { Sampler, validateSamplerOptions } from '../src/sampler.ts';

/** Deterministic pseudo-random logits (LCG), so the tests are reproducible. */
function randomLogits(n: number, seed: number, scale = 4): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

const argmax = (a: Float32Array) => a.reduce((b, v, i) => (v > a[b] ? i : b), 0);
const softmax = (a: number[], t = 1) => {
  const m = Math.max(...a);
  const e = a.map((x) => Math.exp((x - m) / t));
  const z = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / z);
};

describe('Sampler', () => {
  const N = 32000;

  it('greedy (temperature 0) picks the argmax, ties to the lowest id', () => {
    for (const seed of [1, 2, 3]) {
      const l = randomLogits(N, seed);
      expect(new Sampler({ temperature: 0 }, N).sample(l, [])).toBe(argmax(l));
    }
    const tie = new Float32Array([0, 5, 1, 5, 5]);
    expect(new Sampler({ temperature: 0 }, 5).sample(tie, [])).toBe(1);
  });

  it('the same seed gives the same sequence; another seed a different one', () => {
    const run = (seed: number) => {
      const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed }, N);
      return Array.from({ length: 50 }, (_, i) => s.sample(randomLogits(N, 100 + i, 2), []));
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('top-k 1 and tiny top-p are greedy', () => {
    for (let i = 0; i < 20; i++) {
      const l = randomLogits(N, 500 + i);
      expect(new Sampler({ temperature: 1.5, topK: 1, seed: i }, N).sample(l, [])).toBe(argmax(l));
      expect(new Sampler({ temperature: 1.5, topK: 0, topP: 1e-6, minP: 0, seed: i }, N).sample(l, [])).toBe(argmax(l));
      expect(new Sampler({ temperature: 1.5, topK: 40, topP: 1e-6, seed: i }, N).sample(l, [])).toBe(argmax(l));
    }
  });

  it('top-k keeps only the k best', () => {
    const l = randomLogits(1000, 7, 1);
    const top3 = Array.from(l.keys()).sort((a, b) => l[b] - l[a]).slice(0, 3);
    const s = new Sampler({ temperature: 5, topK: 3, topP: 1, minP: 0, seed: 1 }, 1000);
    const seen = new Set(Array.from({ length: 300 }, () => s.sample(l, [])));
    expect([...seen].sort()).toEqual([...top3].sort());
  });

  it('top-p keeps the smallest prefix reaching p', () => {
    // probabilities ~ 0.5, 0.3, 0.15, 0.05: p = 0.7 keeps the first two
    const l = new Float32Array([0.5, 0.3, 0.15, 0.05].map(Math.log));
    for (const topK of [0, 4]) {
      const s = new Sampler({ temperature: 1, topK, topP: 0.7, minP: 0, seed: 3 }, 4);
      const seen = new Set(Array.from({ length: 400 }, () => s.sample(l, [])));
      expect([...seen].sort()).toEqual([0, 1]);
    }
  });

  it('min-p drops tokens below minP x the best probability', () => {
    // relative probs 1, 0.5, 0.2, 0.05 (first = best); min-p 0.3 keeps ids 0 and 1
    const l = new Float32Array([1, 0.5, 0.2, 0.05].map(Math.log));
    for (const topK of [0, 4]) {
      const s = new Sampler({ temperature: 1, topK, topP: 1, minP: 0.3, seed: 5 }, 4);
      const seen = new Set(Array.from({ length: 400 }, () => s.sample(l, [])));
      expect([...seen].sort()).toEqual([0, 1]);
    }
  });

  it('repetition penalty divides positive and multiplies negative logits of recent tokens', () => {
    const l = new Float32Array([2.0, 1.5, -1.0, -1.2]);
    const greedy = (o: object, hist: number[]) => new Sampler({ temperature: 0, ...o }, 4).sample(l, hist);
    expect(greedy({}, [0])).toBe(0);
    expect(greedy({ repeatPenalty: 1.5 }, [0])).toBe(1); // 2.0 / 1.5 = 1.33 < 1.5
    expect(greedy({ repeatPenalty: 1.5, repeatLastN: 1 }, [0, 3])).toBe(0); // 0 is outside the window
    // negative logits get more negative: with 0 and 1 masked out, 2 (-1.0) loses to 3 (-1.2) once penalized
    const neg = new Float32Array([-9, -9, -1.0, -1.2]);
    expect(new Sampler({ temperature: 0, repeatPenalty: 1.5 }, 4).sample(neg, [2])).toBe(3); // -1.5 < -1.2
    // a repeated id is penalized once, not per occurrence
    expect(greedy({ repeatPenalty: 1.2 }, [0, 0, 0, 0])).toBe(0); // 2.0 / 1.2 = 1.67 > 1.5
  });

  it('temperature sampling matches softmax(logits / T) (chi-square)', () => {
    const logits = [1.0, 0.5, 0.0, -0.3, -1.0, 0.8, 0.2, -2.0];
    for (const T of [0.7, 1.0, 1.6]) {
      const s = new Sampler({ temperature: T, topK: 0, topP: 1, minP: 0, seed: 1234 }, 8);
      const draws = 40000;
      const counts = new Array(8).fill(0);
      const l = Float32Array.from(logits);
      for (let i = 0; i < draws; i++) counts[s.sample(l, [])]++;
      const p = softmax(logits, T);
      const chi2 = counts.reduce((acc, c, i) => acc + (c - draws * p[i]) ** 2 / (draws * p[i]), 0);
      expect(chi2).toBeLessThan(24.3); // 7 dof, p = 0.001
    }
  });

  it('refuses non-finite logits on every path (greedy, penalised greedy, top-k, top-p/min-p only, plain softmax)', () => {
    const paths = [
      { temperature: 0 },
      { temperature: 0, repeatPenalty: 1.1 },
      { temperature: 0.8 },
      { temperature: 0.8, topK: 0 },
      { temperature: 0.8, topK: 0, topP: 1, minP: 0 },
      { temperature: 1.5, topK: 5, topP: 0.5, seed: 3 },
    ];
    for (const opts of paths) {
      const s = new Sampler(opts, 8);
      const nan = new Float32Array(8).fill(Number.NaN);
      expect(() => s.sample(nan, [1])).toThrow(GpuError);
      expect(() => s.sample(nan, [1])).toThrow(/^the logits are not finite \(NaN at token 0\)[^\n]*$/);
      // One bad entry among good ones is still a broken model, not a token to skip.
      const one = new Float32Array([1, 2, 3, Number.NaN, 0, 0, 0, 0]);
      expect(() => s.sample(one, [])).toThrow(/NaN at token 3/);
      const inf = new Float32Array([1, Number.POSITIVE_INFINITY, 0, 0, 0, 0, 0, 0]);
      expect(() => s.sample(inf, [])).toThrow(/Infinity at token 1/);
      expect(() => s.sample(new Float32Array(8).fill(Number.NEGATIVE_INFINITY), [])).toThrow(/every logit is -Infinity/);
      // -Infinity marks a masked token: the others still sample.
      const masked = new Float32Array([Number.NEGATIVE_INFINITY, 0, 5, 0, 0, 0, 0, 0]);
      expect(s.sample(masked, [])).not.toBe(0);
    }
  });

  it('rejects logits shorter than the vocabulary', () => {
    expect(() => new Sampler({}, 10).sample(new Float32Array(5), [])).toThrow(UsageError);
  });
});

describe('validateSamplerOptions', () => {
  it('accepts good values and defaults', () => {
    expect(() => validateSamplerOptions({})).not.toThrow();
    expect(() => validateSamplerOptions({ temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1.1, repeatLastN: -1, seed: 7 })).not.toThrow();
  });

  it.each([
    [{ topP: 2 }, 'top-p 2 is out of range 0..1: use e.g. topP 0.9 (--top-p 0.9)'],
    [{ temperature: -1 }, /temperature -1 .*temperature 0\.8 \(--temp 0\.8\)/],
    [{ topK: -3 }, /top-k -3 .*--top-k 40/],
    [{ topK: 2.5 }, /top-k 2.5/],
    [{ minP: 1.5 }, /min-p 1.5 is out of range 0..1/],
    [{ repeatPenalty: 0 }, /repeat-penalty 0 .*--repeat-penalty/],
    [{ seed: 1.5 }, /seed 1.5 is not an integer/],
    [{ temperature: Number.NaN }, /temperature NaN/],
  ])('rejects %o', (opts, msg) => {
    expect(() => validateSamplerOptions(opts)).toThrow(UsageError);
    expect(() => validateSamplerOptions(opts)).toThrow(msg);
    expect(() => new Sampler(opts, 10)).toThrow(UsageError);
  });
});
