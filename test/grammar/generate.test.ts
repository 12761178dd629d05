// Constrained sampling through the generation loop (src/generate.ts):
//   - with a scripted fake model and the stories260K tokenizer: greedy decoding
//     leaves the GPU argmax path, EOS is refused until the grammar is complete,
//     generation ends by itself when nothing else can follow, bad grammars fail
//     before the model is touched;
//   - end to end on a random-weight model (make-model tiny, in a temp dir) at
//     temperature 1: 20 seeded runs under a strict schema all give JSON that validates.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationStats, Token } from '../../src/api.ts';
import { readConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { type ForwardModel, Session } from '../../src/generate.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { tokenVocab } from '../../src/grammar/index.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { STRICT, validate } from './json-validate.ts';

/** A model whose logits favour `prefer(pos)` (or EOS) and are flat elsewhere; records which path ran. */
class FakeModel implements ForwardModel {
  contextLength = 512;
  argmaxCalls = 0;
  forwardCalls = 0;
  constructor(private readonly vocab: number, private readonly prefer: (pos: number) => number) {}
  async forward(tokens: number[], pos: number) {
    this.forwardCalls++;
    const l = new Float32Array(this.vocab);
    l[this.prefer(pos + tokens.length - 1)] = 10;
    return l;
  }
  async forwardArgmax(tokens: number[], pos: number) {
    this.argmaxCalls++;
    return this.prefer(pos + tokens.length - 1);
  }
}

async function run(s: Session, prompt: number[], opts: object) {
  let stats: GenerationStats | undefined;
  const toks: Token[] = [];
  for await (const t of s.generate(prompt, { maxTokens: 64, ...opts }, (st) => (stats = st))) toks.push(t);
  return { text: toks.map((t) => t.text).join(''), stats: stats!, toks };
}

describe.skipIf(!hasShared)('Session.generate with a grammar (fake model, stories260K tokenizer)', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    const f = await openGguf(sharedModel('stories260K.gguf'));
    tok = Tokenizer.fromConfig(readConfig(f).tokenizer!);
    await f.close();
  });

  it('greedy: the model wants EOS at once, the grammar gets "yes" first, then stops by itself', async () => {
    const m = new FakeModel(tok.vocabSize, () => tok.eosId!);
    const r = await run(new Session(m, tok), [tok.bosId!], { temperature: 0, grammar: 'root ::= "yes" | "no"' });
    expect(r.text === 'yes' || r.text === 'no').toBe(true);
    expect(r.stats.stopReason).toBe('eos');
    expect(m.argmaxCalls).toBe(0); // the GPU argmax cannot see the grammar
    // No step after the grammar completed: one forward per generated token.
    expect(m.forwardCalls).toBe(r.stats.generatedTokens);
    expect(r.toks.every((t) => !tok.isEog(t.tokenId))).toBe(true);
  });

  it('a grammar that may go on allows EOS once complete, and the model takes it', async () => {
    const seven = tokenVocab(tok).idOfText('7')!;
    const m = new FakeModel(tok.vocabSize, (p) => (p < 4 ? seven : tok.eosId!));
    const r = await run(new Session(m, tok), [tok.bosId!], { temperature: 0, grammar: 'root ::= [0-9]+' });
    expect(r.text).toBe('7777'); // positions 0..3 prefer '7', then EOS
    expect(r.stats.stopReason).toBe('eos');
  });

  it('a JSON schema at temperature 1 with a seed: JSON that validates, reproducibly', async () => {
    const logits = (pos: number) => (pos * 2654435761) % tok.vocabSize;
    const a = await run(new Session(new FakeModel(tok.vocabSize, logits), tok), [tok.bosId!], { temperature: 1, seed: 3, jsonSchema: STRICT, maxTokens: 400 });
    expect(a.stats.stopReason).toBe('eos');
    expect(validate(JSON.parse(a.text), STRICT)).toBe('');
    const b = await run(new Session(new FakeModel(tok.vocabSize, logits), tok), [tok.bosId!], { temperature: 1, seed: 3, jsonSchema: STRICT, maxTokens: 400 });
    expect(b.text).toBe(a.text);
  });

  it('a bad grammar or schema fails before the model runs, in one line', async () => {
    const m = new FakeModel(tok.vocabSize, () => 5);
    const s = new Session(m, tok);
    for (const [opts, re] of [
      [{ grammar: 'root ::= "a" | root "b"' }, /left-recursive/],
      [{ grammar: 'root ::= undefined-rule' }, /never defined/],
      [{ jsonSchema: { type: 'array', uniqueItems: true } }, /uniqueItems/],
      [{ grammar: 'root ::= "a"', jsonSchema: {} }, /not both/],
    ] as const) {
      const e = await run(s, [tok.bosId!], opts).catch((x) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toMatch(re);
      expect(e.message).not.toContain('\n');
    }
    expect(m.forwardCalls + m.argmaxCalls).toBe(0);
  });
});

const gpu = !!(await getTestEngine());
describe.skipIf(!gpu)('constrained sampling end to end (random-weight tiny model)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-grammar-'));
  let model: QllmModel;
  beforeAll(async () => {
    const path = join(dir, 'tiny.gguf');
    await makeModel({ out: path, preset: 'tiny', type: 'q8_0', seed: 11, ctx: 1024 });
    model = await loadModel(path, { contextLength: 1024 });
  });
  afterAll(() => {
    model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('20 seeded runs at temperature 1 under a strict schema: all parse and validate; EOS never early', async () => {
    const ends: string[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const gen = model.generate('Once upon a time', { temperature: 1, seed, jsonSchema: STRICT, maxTokens: 900 });
      let text = '';
      for await (const t of gen) text += t.text;
      const s = await gen.stats;
      ends.push(s.stopReason);
      expect(s.stopReason, text).toBe('eos');
      expect(validate(JSON.parse(text), STRICT), text).toBe('');
    }
    expect(ends).toHaveLength(20);
  });

  it('the same seed gives the same JSON; GBNF works through chat() too', async () => {
    const once = async () => {
      let t = '';
      for await (const x of model.generate('Hi', { temperature: 1, seed: 42, jsonSchema: { type: 'object', properties: { n: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['n'] } })) t += x.text;
      return t;
    };
    const a = await once();
    expect(a).toBe(await once());
    expect(JSON.parse(a).n).toBeGreaterThanOrEqual(1);
    let c = '';
    for await (const x of model.chat([{ role: 'user', content: 'pick' }], { temperature: 0, grammar: 'root ::= ("red" | "green" | "blue") "."' })) c += x.text;
    expect(['red.', 'green.', 'blue.']).toContain(c);
  });
});
