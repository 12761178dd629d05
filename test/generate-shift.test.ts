// Context shift (GenerateOptions.contextShift), llama.cpp's way: at the end of
// the context keep the first keepTokens, drop half of the rest, and recompute
// the kept tail at its new positions. First the bookkeeping on a scripted
// model, then a real model whose greedy ids after each shift must equal a
// fresh run over exactly the tokens kept.
import { describe, expect, it } from 'vitest';
import type { GenerateOptions, GenerationStats } from '../src/api.ts';
import { type ForwardModel, type LoopTokenizer, Session, truncatePrompt } from '../src/generate.ts';
import { loadModel } from '../src/model-api.ts';
import { hasShared, sharedModel } from './shared.ts';

const VOCAB = 16;

/** Remembers what the cache holds (position → id), as a real KV cache would. */
class CacheModel implements ForwardModel {
  contextLength = 16;
  kv: number[] = [];
  fed: { tokens: number[]; pos: number }[] = [];
  private pick(tokens: number[], pos: number): number {
    if (pos > this.kv.length) throw new Error(`gap: feeding at ${pos} with ${this.kv.length} cached`);
    if (pos + tokens.length > this.contextLength) throw new Error(`past the context: ${pos}+${tokens.length}`);
    this.kv.length = pos;
    this.kv.push(...tokens);
    this.fed.push({ tokens: [...tokens], pos });
    return 3 + (this.kv.length % 10); // any id but EOS
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

const tokenizer: LoopTokenizer = { vocabSize: VOCAB, isEog: (id) => id === 2, streamDecoder: () => ({ push: () => 'x', flush: () => '' }) };

async function run(s: Session, prompt: number[], opts = {}) {
  let stats: GenerationStats | undefined;
  const ids: number[] = [];
  for await (const t of s.generate(prompt, { temperature: 0, ...opts }, (st) => (stats = st))) if (t.tokenId >= 0) ids.push(t.tokenId);
  return { ids, stats: stats! };
}

describe('context shift on a scripted model', () => {
  it('without it, generation ends at the context (stop reason length)', async () => {
    const m = new CacheModel();
    const r = await run(new Session(m, tokenizer), [1, 5, 6, 7], { maxTokens: 100 });
    expect(r.ids).toHaveLength(12); // 16 - 4
    expect(r.stats.stopReason).toBe('length');
    expect(r.stats.contextShifts).toBeUndefined();
  });

  it('with it, keeps keepTokens, drops half of the rest, and refeeds the kept tail from there', async () => {
    const m = new CacheModel();
    const prompt = [1, 9, 9, 5, 6, 7];
    const r = await run(new Session(m, tokenizer), prompt, { maxTokens: 40, contextShift: true, keepTokens: 3 });
    expect(r.ids).toHaveLength(40);
    expect(r.stats.stopReason).toBe('length');
    expect(r.stats.contextShifts).toBeGreaterThanOrEqual(3);
    // The kept head never moves; each shift feeds at position keepTokens.
    expect(m.kv.slice(0, 3)).toEqual([1, 9, 9]);
    const shifts = m.fed.filter((f, i) => i > 0 && f.pos === 3);
    expect(shifts).toHaveLength(r.stats.contextShifts!);
    // First shift: 16 cached (3 kept + 13), drop floor(13 / 2) = 6, refeed 7 + the new token.
    expect(shifts[0].tokens).toHaveLength(8);
    // What the cache holds is always the history minus whole dropped runs: its tail is the latest tokens.
    const history = [...prompt, ...r.ids.slice(0, -1)];
    expect(m.kv.slice(-5)).toEqual(history.slice(-5));
  });

  it('cuts a prompt longer than the context as llama-server does, keeping its head', () => {
    const ids = Array.from({ length: 40 }, (_, i) => i);
    const cut = truncatePrompt(ids, 16, 4);
    expect(cut.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(cut.length).toBeLessThan(16);
    expect(cut.at(-1)).toBe(39);
    // Whole blocks of (16 - 4) / 2 = 6 are dropped: 40 - 4 - 6 = 30 → 5 blocks, 30 tokens.
    expect(cut).toEqual([0, 1, 2, 3, ...ids.slice(34)]);
    expect(truncatePrompt([1, 2, 3], 16, 1)).toEqual([1, 2, 3]);
  });

  it('generates after a cut prompt, and says how much was cut', async () => {
    const m = new CacheModel();
    const r = await run(new Session(m, tokenizer), Array.from({ length: 30 }, (_, i) => 3 + (i % 10)), { maxTokens: 4, contextShift: true });
    expect(r.ids).toHaveLength(4);
    expect(r.stats.droppedPromptTokens).toBeGreaterThan(0);
    expect(r.stats.promptTokens + r.stats.droppedPromptTokens!).toBe(30);
    // Without context shift the same prompt is refused in one line.
    await expect(run(new Session(new CacheModel(), tokenizer), Array.from({ length: 30 }, () => 5))).rejects.toThrow(/does not fit the context of 16/);
  });
});

describe.skipIf(!hasShared)('context shift on stories260K', () => {
  it('a reply of 3× the context runs to the end, and after every shift the ids are a fresh run over the kept tokens', async () => {
    const ctx = 48;
    const model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: ctx });
    try {
      const gen = model.generate('Once upon a time', { temperature: 0, maxTokens: 3 * ctx, contextShift: true });
      const ids: number[] = [];
      for await (const t of gen) if (t.tokenId >= 0) ids.push(t.tokenId);
      const stats = await gen.stats;
      const prompt = await gen.promptIds;
      expect(stats.stopReason === 'length' || stats.stopReason === 'eos').toBe(true);
      if (stats.stopReason === 'length') expect(ids).toHaveLength(3 * ctx);
      expect(stats.contextShifts).toBeGreaterThanOrEqual(2);

      // Replay the shifts on the host and check each next id against a fresh greedy step over the kept tokens.
      const llama = model.llama;
      let kept = [...prompt];
      let checked = 0;
      for (let i = 0; i < ids.length; i++) {
        if (kept.length + 1 > ctx) {
          const discard = Math.floor((kept.length - 1 - 1) / 2); // keepTokens 1 (BOS); the last id is fed, not cached
          kept = [kept[0], ...kept.slice(1 + discard)];
          // The first step after a shift recomputes every kept position: compare it with a fresh prefill.
          const fresh = await llama.forwardArgmax(kept, 0);
          expect(fresh).toBe(ids[i]);
          checked++;
        }
        kept.push(ids[i]);
      }
      expect(checked).toBe(stats.contextShifts);
    } finally {
      model.dispose();
    }
  });

  it('chat() shifts by default and keeps the system prompt; generate() does not shift unless asked', async () => {
    const model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 64 });
    try {
      const seen: GenerateOptions[] = [];
      const orig = model.session.generate.bind(model.session);
      model.session.generate = (p, o, d) => {
        seen.push({ ...o });
        return orig(p, o, d);
      };
      const drain = async (g: AsyncIterable<unknown>) => {
        for await (const _ of g);
      };
      await drain(model.chat([{ role: 'system', content: 'Tell stories about cats.' }, { role: 'user', content: 'Hi' }], { maxTokens: 1 }));
      await drain(model.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 1 }));
      await drain(model.generate('Hi', { maxTokens: 1 }));
      await drain(model.chat([{ role: 'system', content: 'x' }, { role: 'user', content: 'Hi' }], { maxTokens: 1, contextShift: false }));
      expect(seen.map((o) => o.contextShift)).toEqual([true, true, undefined, false]);
      // The system turn alone, as the template renders it: its tokens are the kept head.
      const { renderChat } = await import('../src/tokenizer/chat.ts');
      const head = renderChat(model.config.tokenizer!, [{ role: 'system', content: 'Tell stories about cats.' }], { addGenerationPrompt: false });
      const want = model.tokenizer.encode(head.text, { addBos: head.addBos, parseSpecial: true }).length;
      expect(want).toBeGreaterThan(3);
      expect(seen[0].keepTokens).toBe(want);
      expect(seen[1].keepTokens).toBeUndefined(); // no system message: just the BOS
    } finally {
      model.dispose();
    }
  });
});
