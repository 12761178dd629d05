// The generation loop on a fake model whose "logits" are scripted: KV-cache
// prefix reuse, EOS, stop strings split across tokens, limits, abort, stats.
import { describe, expect, it } from 'vitest';
import type { GenerationStats, Token } from '../src/api.ts';
import { type ForwardModel, type LoopTokenizer, Session } from '../src/generate.ts';

const VOCAB = 16;
const EOS = 2;
// id → text; ids 3.. are letters.
const piece = (id: number) => (id >= 3 ? String.fromCharCode(94 + id) : '');

class FakeModel implements ForwardModel {
  contextLength = 32;
  fed: { tokens: number[]; pos: number }[] = [];
  constructor(private next: (lastToken: number, pos: number) => number) {}
  private pick(tokens: number[], pos: number) {
    this.fed.push({ tokens: [...tokens], pos });
    return this.next(tokens[tokens.length - 1], pos + tokens.length - 1);
  }
  async forward(tokens: number[], pos: number) {
    const l = new Float32Array(VOCAB).fill(-10);
    l[this.pick(tokens, pos)] = 10;
    return l;
  }
  async forwardArgmax(tokens: number[], pos: number) {
    return this.pick(tokens, pos);
  }
}

const tokenizer: LoopTokenizer = {
  vocabSize: VOCAB,
  isEog: (id) => id === EOS,
  streamDecoder: () => ({ push: piece, flush: () => '' }),
};

async function collect(s: Session, prompt: number[], opts = {}) {
  let stats: GenerationStats | undefined;
  const toks: Token[] = [];
  for await (const t of s.generate(prompt, { temperature: 0, ...opts }, (st) => (stats = st))) toks.push(t);
  return { toks, text: toks.map((t) => t.text).join(''), stats: stats! };
}

describe('Session.generate', () => {
  it('feeds the prompt once, then one token per step, and stops at EOS', async () => {
    // Emits 3,4,5 then EOS.
    const m = new FakeModel((_, p) => (p < 4 ? 3 + (p - 1) : EOS));
    const r = await collect(new Session(m, tokenizer), [1, 7]);
    expect(m.fed.map((f) => f.tokens.length)).toEqual([2, 1, 1, 1]);
    expect(m.fed.map((f) => f.pos)).toEqual([0, 2, 3, 4]);
    expect(r.stats.stopReason).toBe('eos');
    expect(r.stats.generatedTokens).toBe(4);
    expect(r.text).toBe(piece(3) + piece(4) + piece(5));
  });

  it('reuses the cached prefix of a follow-up prompt (a chat turn)', async () => {
    const m = new FakeModel(() => 5);
    const s = new Session(m, tokenizer);
    await collect(s, [1, 6, 7], { maxTokens: 2 });
    m.fed = [];
    // The cache holds the prompt and the first reply token (the second was sampled, never fed).
    // A prompt that extends it (prompt + reply + new text) feeds only what is new.
    await collect(s, [1, 6, 7, 5, 5, 8, 9], { maxTokens: 1 });
    expect(m.fed[0]).toEqual({ tokens: [5, 8, 9], pos: 4 });
    m.fed = [];
    // A prompt that diverges early is re-fed from the divergence.
    await collect(s, [1, 9], { maxTokens: 1 });
    expect(m.fed[0]).toEqual({ tokens: [9], pos: 1 });
    m.fed = [];
    // An identical prompt still feeds its last token to get fresh logits.
    await collect(s, [1, 9], { maxTokens: 1 });
    expect(m.fed[0]).toEqual({ tokens: [9], pos: 1 });
  });

  it('stops before a stop string that spans tokens and never emits part of it', async () => {
    // Text: b c d e f g h ... ; stop at "fg".
    const m = new FakeModel((_, p) => 4 + p);
    const r = await collect(new Session(m, tokenizer), [1], { stop: ['fg'], maxTokens: 10 });
    expect(r.text).toBe('bcde');
    expect(r.stats.stopReason).toBe('stop');
  });

  it('honours maxTokens, the context limit and an abort', async () => {
    const m = new FakeModel(() => 3);
    expect((await collect(new Session(m, tokenizer), [1], { maxTokens: 5 })).stats).toMatchObject({ generatedTokens: 5, stopReason: 'length' });
    // Context 32, prompt 30: at most 2 new tokens.
    expect((await collect(new Session(m, tokenizer), Array(30).fill(3), { maxTokens: 100 })).stats.generatedTokens).toBe(2);
    const ac = new AbortController();
    const s = new Session(m, tokenizer);
    let n = 0;
    let stats: GenerationStats | undefined;
    for await (const _ of s.generate([1], { temperature: 0, signal: ac.signal }, (st) => (stats = st))) if (++n === 3) ac.abort();
    expect(stats).toMatchObject({ generatedTokens: 3, stopReason: 'abort' });
  });

  it('rejects prompts that do not fit and bad limits with one-line errors', async () => {
    const s = new Session(new FakeModel(() => 3), tokenizer);
    await expect(collect(s, Array(32).fill(3))).rejects.toThrow(/does not fit the context of 32/);
    await expect(collect(s, [1], { maxTokens: 0 })).rejects.toThrow(/positive integer/);
    await expect(collect(s, [1], { topP: 2 })).rejects.toThrow(/top-p 2/);
  });

  it('a dropped iterator does not block the next generation: the newer one supersedes it', async () => {
    const m = new FakeModel(() => 3);
    const s = new Session(m, tokenizer);
    let oldStats: GenerationStats | undefined;
    const old = s.generate([1, 4], { temperature: 0 }, (st) => (oldStats = st));
    expect((await old.next()).value).toMatchObject({ tokenId: 3 });
    // Abandoned here: no return(), no abort. The next generation runs to the end…
    const b = await collect(s, [1, 5], { maxTokens: 3 });
    expect(b.stats).toMatchObject({ generatedTokens: 3, stopReason: 'length' });
    // …its prompt diverges at position 1 and is fed from there, after the old one's cached tokens.
    expect(m.fed.slice(-3)[0]).toEqual({ tokens: [5], pos: 1 });
    // The old one's stats settled when it was superseded, and its next next() says why it ended.
    expect(oldStats).toMatchObject({ generatedTokens: 1, stopReason: 'abort' });
    await expect(old.next()).rejects.toThrow(/superseded by a newer generate\(\) or chat\(\)/);
  });

  it('a newer generation waits for a step already on the GPU, then the older one ends with an error', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const m = new FakeModel(() => 3);
    const forward = m.forwardArgmax.bind(m);
    let held = true;
    let started = false;
    m.forwardArgmax = async (t, p) => {
      started = true;
      if (held) await gate;
      return forward(t, p);
    };
    const s = new Session(m, tokenizer);
    const old = s.generate([1, 4], { temperature: 0 }, () => {});
    const oldNext = old.next();
    while (!started) await Promise.resolve(); // its prefill is now in flight
    const newer = collect(s, [1, 4, 6], { maxTokens: 2 });
    await Promise.resolve();
    expect(m.fed).toEqual([]); // the newer one has not touched the model while the step runs
    held = false;
    release();
    await expect(oldNext).rejects.toThrow(/superseded/);
    const r = await newer;
    expect(r.stats.generatedTokens).toBe(2);
    // The old prefill's tokens are in the cache, so the newer one feeds only its new token.
    expect(m.fed[1]).toEqual({ tokens: [6], pos: 2 });
  });

  it('of two generations started together the later one runs; the earlier one fails with one line', async () => {
    const s = new Session(new FakeModel(() => 3), tokenizer);
    const [a, b] = await Promise.allSettled([collect(s, [1, 4], { maxTokens: 3 }), collect(s, [1, 5], { maxTokens: 3 })]);
    expect(a.status === 'rejected' && String(a.reason.message)).toMatch(/^this generation was superseded[^\n]*$/);
    expect(b.status === 'fulfilled' && b.value.stats.generatedTokens).toBe(3);
  });

  it('an invalid newer request leaves the running generation alone', async () => {
    const s = new Session(new FakeModel(() => 3), tokenizer);
    const old = s.generate([1, 4], { temperature: 0, maxTokens: 3 }, () => {});
    await old.next();
    await expect(collect(s, [1], { topP: 2 })).rejects.toThrow(/top-p 2/);
    expect((await old.next()).done).toBe(false);
  });
});
