// The scheduler's batching rule (src/models/scheduler.ts) on a fake model that
// records its steps: concurrent decodes share a step, a sequence that is late
// is not waited for twice, new prompts ride along with the decodes (in chunks
// when they do not fit), exclusive work runs alone, a lone sequence takes the
// one-token path (with `next`), a failed step fails every request in it, and
// a request the model would refuse is refused alone, before it joins a step. No GPU.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BatchRow } from '../../src/models/llama-batch.ts';
import { type BatchModel, Scheduler } from '../../src/models/scheduler.ts';

type Step = { kind: 'one'; seq: number; n: number; next?: boolean } | { kind: 'batch'; seqs: number[]; tokens: number[] };

class FakeModel implements BatchModel {
  readonly contextLength = 64;
  readonly maxBatch = 8;
  readonly vocab = 100;
  steps: Step[] = [];
  fail = false;
  constructor(readonly sequences = 4) {}
  private async work<T>(v: T): Promise<T> {
    await new Promise((r) => setTimeout(r, 2));
    if (this.fail) throw new Error('device lost (fake)');
    return v;
  }
  forward(tokens: number[], _pos: number, o: { seq: number }): Promise<Float32Array> {
    this.steps.push({ kind: 'one', seq: o.seq, n: tokens.length });
    return this.work(Float32Array.of(o.seq, tokens.at(-1)!));
  }
  forwardArgmax(tokens: number[], _pos: number, o: { seq: number; next?: boolean }): Promise<number> {
    this.steps.push({ kind: 'one', seq: o.seq, n: tokens.length, next: o.next });
    return this.work(tokens.at(-1)! + 1);
  }
  /** LlamaModel's rules on a request: in the context, ids in the vocabulary. */
  validate(tokens: number[], pos: number, seq: number): void {
    if (seq < 0 || seq >= this.sequences) throw new Error(`sequence ${seq} is invalid`);
    if (pos + tokens.length > this.contextLength) throw new Error(`prompt of ${pos + tokens.length} tokens does not fit the context of ${this.contextLength}`);
    for (const id of tokens) if (id < 0 || id >= this.vocab) throw new Error(`token id ${id} is outside the vocabulary of ${this.vocab}`);
  }
  /** Every batched step's rows as given (position, whether logits were asked). */
  rows: { seq: number; pos: number; n: number; logits: boolean }[][] = [];
  forwardBatch(rows: readonly BatchRow[]) {
    this.rows.push(rows.map((r) => ({ seq: r.seq, pos: r.pos, n: r.tokens.length, logits: r.logits === true })));
    // As LlamaModel.forwardBatch: one bad row fails the whole step.
    for (const r of rows) this.validate(r.tokens, r.pos, r.seq);
    this.steps.push({ kind: 'batch', seqs: rows.map((r) => r.seq), tokens: rows.map((r) => r.tokens.length) });
    return this.work({ ids: rows.map((r) => r.tokens.at(-1)! + 1), logits: rows.map((r) => (r.logits ? Float32Array.of(r.seq, r.tokens.at(-1)!) : undefined)) });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A greedy loop on one sequence's view: a prompt, then `n` one-token steps, `pause` ms between them. */
async function loop(s: Scheduler, seq: number, n: number, pause = 0, prompt = [1, 2, 3]): Promise<number[]> {
  const v = s.view(seq);
  const out: number[] = [];
  let id = await v.forwardArgmax(prompt, 0, { next: true });
  for (let i = 0; i < n; i++) {
    out.push(id);
    if (pause) await sleep(pause);
    id = await v.forwardArgmax([id], prompt.length + i, { next: true });
  }
  v.end();
  return out;
}

describe('Scheduler', () => {
  it('runs concurrent decodes of several sequences as one step each, and each gets its own result', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const got = await Promise.all([0, 1, 2].map((seq) => loop(s, seq, 6, 0, [0, 10 * seq + 1])));
    expect(got).toEqual([0, 1, 2].map((seq) => Array.from({ length: 6 }, (_, i) => 10 * seq + 2 + i)));
    const batches = m.steps.filter((x): x is Extract<Step, { kind: 'batch' }> => x.kind === 'batch');
    // Every decode ran (18 rows), most of them three to a step.
    const rows = batches.reduce((n, b) => n + b.tokens.filter((t) => t === 1).length, 0) + m.steps.filter((x) => x.kind === 'one' && x.n === 1).length;
    expect(rows).toBe(18);
    expect(batches.filter((b) => b.seqs.length === 3).length).toBeGreaterThanOrEqual(4);
    expect(s.batchedSteps).toBe(batches.length);
  });

  it('a lone sequence takes the one-token path, with next', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 5);
    await loop(s, 2, 3);
    expect(m.steps).toEqual([{ kind: 'one', seq: 2, n: 3, next: true }, ...[0, 1, 2].map(() => ({ kind: 'one', seq: 2, n: 1, next: true }))]);
  });

  it('a sequence that misses a step is not waited for again until it asks', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 15);
    const fast = loop(s, 0, 8);
    const slow = loop(s, 1, 2, 100);
    await Promise.all([fast, slow]);
    // 0's decode steps ran without 1 (alone), and 1's came later alone or with 0: no step waited for 1 twice in a row.
    const zeroAlone = m.steps.filter((x) => x.kind === 'one' && x.seq === 0 && x.n === 1).length;
    expect(zeroAlone).toBeGreaterThanOrEqual(6);
  });

  it('prompts that come together are prefilled in one step, then ride along with the decodes; one that does not fit goes in chunks', async () => {
    const m = new FakeModel(); // 8 tokens a step
    const s = new Scheduler(m, 20);
    const runs = [loop(s, 0, 6), loop(s, 1, 3, 0, [5, 6, 7, 8, 9]), loop(s, 2, 3, 0, [9, 8, 7, 6, 5, 4, 3, 2, 1])];
    const got = await Promise.all(runs);
    expect(got[1]).toEqual([10, 11, 12]);
    expect(got[2]).toEqual([2, 3, 4]);
    // 0's and 1's prompts together (2's does not fit); then their decodes + 6 tokens of 2's; then the decodes + the rest of 2's.
    expect(m.steps.slice(0, 3)).toEqual([
      { kind: 'batch', seqs: [0, 1], tokens: [3, 5] },
      { kind: 'batch', seqs: [0, 1, 2], tokens: [1, 1, 6] },
      { kind: 'batch', seqs: [0, 1, 2], tokens: [1, 1, 3] },
    ]);
  });

  it('a prompt that comes while another sequence decodes rides along with its next step', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const v0 = s.view(0);
    const first = await v0.forwardArgmax([1, 2, 3], 0, { next: true }); // alone: the ordinary path
    const decode = v0.forwardArgmax([first], 3, { next: true });
    const joined = loop(s, 1, 2, 0, [7, 7]);
    expect(await decode).toBe(first + 1);
    v0.end();
    expect(await joined).toEqual([8, 9]);
    expect(m.steps[0]).toEqual({ kind: 'one', seq: 0, n: 3, next: true });
    expect(m.steps[1]).toEqual({ kind: 'batch', seqs: [0, 1], tokens: [1, 2] });
  });

  it('exclusive work runs as a step of its own; logits rows come back per sequence', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const a = s.view(0), b = s.view(1);
    await Promise.all([a.forward([1, 2], 0), b.forward([3, 4], 0)]);
    const order: string[] = [];
    const ex = s.exclusive(async () => {
      order.push('exclusive');
      return 42;
    });
    const [la, lb] = await Promise.all([a.forward([7], 2), b.forward([9], 2)]);
    expect(Array.from(la)).toEqual([0, 7]);
    expect(Array.from(lb)).toEqual([1, 9]);
    expect(await ex).toBe(42);
    expect(m.steps.at(-1)).toEqual({ kind: 'batch', seqs: [0, 1], tokens: [1, 1] });
  });

  it('a failed step rejects every row in it', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const a = s.view(0), b = s.view(1);
    await Promise.all([a.forwardArgmax([1, 2], 0), b.forwardArgmax([3, 4], 0)]);
    m.fail = true;
    const r = await Promise.allSettled([a.forwardArgmax([5], 2), b.forwardArgmax([6], 2)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    expect(m.steps.at(-1)).toEqual({ kind: 'batch', seqs: [0, 1], tokens: [1, 1] });
  });

  it('a request the model would refuse is rejected alone, at once, and its neighbours\' step runs', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 300);
    const [a, b, c] = [s.view(0), s.view(1), s.view(2)];
    await Promise.all([a.forwardArgmax([1, 2], 0), b.forwardArgmax([3, 4], 0), c.forwardArgmax([5, 6], 0)]);
    const before = m.steps.length;
    // Frozen clock and timers, and a model that answers at once: the step must run without
    // any timer firing, i.e. without waiting its 300 ms window for the refused sequences.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    let r: PromiseSettledResult<number>[] | undefined;
    try {
      (m as unknown as { work: <T>(v: T) => Promise<T> }).work = async (v) => v;
      const all = Promise.allSettled([
        b.forwardArgmax([8], 64), // past the context of 64
        c.forwardArgmax([100], 2), // outside the vocabulary of 100
        a.forwardArgmax([7], 2),
      ]).then((x) => (r = x));
      await vi.advanceTimersByTimeAsync(0); // microtasks only: no time passes
      expect(r, 'answered without waiting for the refused sequences').toBeDefined();
      await all;
    } finally {
      vi.useRealTimers();
    }
    if (!r) throw new Error('unreachable');
    expect(r[2]).toEqual({ status: 'fulfilled', value: 8 });
    expect(r[0].status === 'rejected' && String(r[0].reason)).toMatch(/does not fit the context of 64/);
    expect(r[1].status === 'rejected' && String(r[1].reason)).toMatch(/token id 100 is outside the vocabulary/);
    // Only 0's token reached the model, and the step did not wait for the refused sequences.
    expect(m.steps.slice(before)).toEqual([{ kind: 'one', seq: 0, n: 1, next: undefined }]);
  });

  it('a prompt longer than a step that comes with another is chunked, each chunk at its position, and runs once', async () => {
    const m = new FakeModel(); // 8 tokens a step
    const s = new Scheduler(m, 20);
    const [a, b] = [s.view(0), s.view(1)];
    const long = Array.from({ length: 10 }, (_, i) => i + 1);
    // Both prompts at once: the first fills a step alone (a chunk), then its rest rides with the second.
    expect(await Promise.all([a.forwardArgmax(long, 0), b.forwardArgmax([20, 21, 22, 23, 24], 0)])).toEqual([11, 25]);
    expect(m.rows).toEqual([
      [{ seq: 0, pos: 0, n: 8, logits: false }],
      [{ seq: 0, pos: 8, n: 2, logits: false }, { seq: 1, pos: 0, n: 5, logits: false }],
    ]);
    expect(m.steps.filter((x) => x.kind === 'one')).toEqual([]);
    expect(s.steps).toBe(2);
  });

  it('a lone prompt longer than a step goes whole, once, on the ordinary path', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const long = Array.from({ length: 10 }, (_, i) => i + 1);
    expect(Array.from(await s.view(2).forward(long, 0))).toEqual([2, 10]);
    expect(m.steps).toEqual([{ kind: 'one', seq: 2, n: 10 }]);
    expect(s.steps).toBe(1);
  });

  it('asks logits only for the rows that want them: not for argmax rows, nor for a chunk', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const [a, b, c] = [s.view(0), s.view(1), s.view(2)];
    const got = await Promise.all([a.forward([1, 2, 3], 0), b.forwardArgmax([4, 5], 0), c.forward([1, 2, 3, 4, 5, 6], 0)]);
    expect(Array.from(got[0] as Float32Array)).toEqual([0, 3]);
    expect(got[1]).toBe(6);
    expect(m.rows[0]).toEqual([{ seq: 0, pos: 0, n: 3, logits: true }, { seq: 1, pos: 0, n: 2, logits: false }, { seq: 2, pos: 0, n: 3, logits: false }]);
    // The rest of the prompt, alone now, takes the ordinary path.
    expect(m.rows).toHaveLength(1);
    expect(m.steps.at(-1)).toEqual({ kind: 'one', seq: 2, n: 3 });
  });

  it('a failed step rejects a prompt it held a chunk of, and that prompt never runs again', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const [a, b] = [s.view(0), s.view(1)];
    await Promise.all([a.forwardArgmax([1], 0), b.forwardArgmax([2], 0)]);
    m.fail = true;
    const r = await Promise.allSettled([a.forwardArgmax([3], 1), b.forwardArgmax(Array.from({ length: 12 }, () => 4), 1)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    m.fail = false;
    const before = m.steps.length;
    expect(await a.forwardArgmax([5], 1)).toBe(6);
    expect(m.steps.slice(before)).toEqual([{ kind: 'one', seq: 0, n: 1, next: undefined }]);
  });

  it('a failed step drops only its own requests: those outside it, and one that came while it ran, are still answered', async () => {
    const m = new FakeModel(); // 8 tokens a step
    const s = new Scheduler(m, 20);
    const [a, b, c] = [s.view(0), s.view(1), s.view(2)];
    let late: Promise<number> | undefined;
    const forwardBatch = m.forwardBatch.bind(m);
    // The first step fails, and c's request comes while it runs.
    m.forwardBatch = (rows) => {
      if (late) return forwardBatch(rows);
      late = c.forwardArgmax([9, 9], 0);
      return Promise.reject(new Error('device lost (fake)'));
    };
    const long = Array.from({ length: 10 }, (_, i) => i + 1);
    // a's prompt fills the first step alone (a chunk); b's waits outside it.
    const r = await Promise.allSettled([a.forwardArgmax(long, 0), b.forwardArgmax([5, 6], 0)]);
    expect(r[0].status).toBe('rejected');
    expect(r[1]).toEqual({ status: 'fulfilled', value: 7 });
    expect(await late).toBe(10);
    expect(m.steps).toEqual([{ kind: 'batch', seqs: [1, 2], tokens: [2, 2] }]);
  });

  it('exclusive work through a view returns its value; one that throws rejects, and the next request runs', async () => {
    const m = new FakeModel();
    const s = new Scheduler(m, 20);
    const v = s.view(1);
    expect(await v.exclusive(async () => 'done')).toBe('done');
    await expect(s.exclusive(async () => { throw new Error('embedding failed'); })).rejects.toThrow('embedding failed');
    expect(await v.forwardArgmax([3], 0)).toBe(4);
    expect(m.steps).toEqual([{ kind: 'one', seq: 1, n: 1, next: undefined }]);
  });
});

/** The fake model without its own timers, so that fake timers see only the scheduler's. */
class InstantModel extends FakeModel {
  override forwardArgmax(tokens: number[], _pos: number, o: { seq: number; next?: boolean }): Promise<number> {
    this.steps.push({ kind: 'one', seq: o.seq, n: tokens.length, next: o.next });
    return Promise.resolve(tokens.at(-1)! + 1);
  }
  override forwardBatch(rows: readonly BatchRow[]) {
    this.steps.push({ kind: 'batch', seqs: rows.map((r) => r.seq), tokens: rows.map((r) => r.tokens.length) });
    return Promise.resolve({ ids: rows.map((r) => r.tokens.at(-1)! + 1), logits: rows.map(() => undefined) });
  }
}

/** Lets every pending promise settle (real macrotask; the fake timers do not fire). */
const settle = () => new Promise((r) => setImmediate(r));

describe('Scheduler timers (fake setTimeout: nothing here depends on how fast the machine is)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('an idle scheduler holds no timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = new InstantModel();
    const s = new Scheduler(m, 1000);
    const v = s.view(0);
    expect(await v.forwardArgmax([1], 0)).toBe(2);
    v.end();
    await settle();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a sequence that ended is not waited for: the other\'s next step runs with no timer firing', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const m = new InstantModel();
    const s = new Scheduler(m, 1000);
    const [a, b] = [s.view(0), s.view(1)];
    const prompts = Promise.all([a.forwardArgmax([1], 0), b.forwardArgmax([2], 0)]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(await prompts).toEqual([2, 3]);
    // Both ask: one step for the two, and both are expected to ask again.
    const both = Promise.all([a.forwardArgmax([3], 1), b.forwardArgmax([4], 1)]);
    await settle();
    expect(await both).toEqual([4, 5]);
    expect(m.steps.at(-1)).toEqual({ kind: 'batch', seqs: [0, 1], tokens: [1, 1] });
    b.end();
    let got: number | undefined;
    void a.forwardArgmax([5], 2).then((x) => { got = x; });
    await settle();
    expect(got).toBe(6);
    expect(m.steps.at(-1)).toEqual({ kind: 'one', seq: 0, n: 1, next: undefined });
  });
});
