// Token-level matching with real vocabularies (tokenizer only, no model):
// stories260K (512-token SentencePiece with byte fallback) and llama-bpe (128k
// byte-level BPE). Token bytes agree with the decoder, the full-vocabulary mask
// agrees with checking tokens one by one, characters split across byte tokens
// work, and sampling random logits through a strict schema always yields JSON
// that validates, with end-of-generation only where the grammar is complete.
import { beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { constraintFor, type GrammarConstraint, tokenVocab } from '../../src/grammar/index.ts';
import { Sampler } from '../../src/sampler.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { loadVocab, vocabPath } from '../tokenizer/vocab-files.ts';
import { STRICT, validate } from './json-validate.ts';

async function storiesTokenizer(): Promise<Tokenizer> {
  const f = await openGguf(sharedModel('stories260K.gguf'));
  try {
    return Tokenizer.fromConfig(readConfig(f).tokenizer!);
  } finally {
    await f.close();
  }
}

/** Seeded normal-ish logits (sum of uniforms), like a random-weight model's. */
function randomLogits(n: number, seed: number): () => Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return s / 4294967296;
  };
  return () => Float32Array.from({ length: n }, () => (u() + u() + u() - 1.5) * 4);
}

/** Samples random logits through the constraint until it ends; returns the text and how it ended. */
function generate(tok: Tokenizer, schema: unknown, seed: number, maxSteps = 3000) {
  const c = constraintFor({ jsonSchema: schema }, tok)!;
  const sampler = new Sampler({ temperature: 1, seed }, tok.vocabSize);
  const logits = randomLogits(tok.vocabSize, seed * 7919 + 1);
  const ids: number[] = [];
  let end = 'length';
  for (let step = 0; step < maxSteps; step++) {
    const id = c.sample(sampler, logits(), ids);
    if (tok.isEog(id)) {
      expect(c.eogAllowed).toBe(true);
      end = 'eos';
      break;
    }
    c.accept(id);
    ids.push(id);
    if (c.done) {
      end = 'done';
      break;
    }
  }
  return { text: tok.decode(ids, { stripLeadingSpace: false }), end, ids };
}

function checkMaskAgainstTokens(c: GrammarConstraint, n: number): void {
  const m = c.mask();
  for (let id = 0; id < n; id++) {
    const bit = (m[id >>> 5] >>> (id & 31)) & 1;
    if (bit !== (c.allows(id) ? 1 : 0)) throw new Error(`token ${id}: mask ${bit}, check ${c.allows(id)}`);
  }
}

describe.skipIf(!hasShared)('grammar x stories260K vocabulary (SentencePiece, byte fallback)', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await storiesTokenizer();
  });

  it('token bytes are what the stream decoder prints, and every token is in the trie', () => {
    const v = tokenVocab(tok);
    let s = 12345;
    const next = () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return s % tok.vocabSize;
    };
    for (let k = 0; k < 200; k++) {
      const ids = Array.from({ length: 12 }, next);
      const bytes = ids.flatMap((id) => (tok.isEog(id) ? [] : [...(v.bytes[id] ?? [])]));
      expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(tok.decode(ids, { stripLeadingSpace: false }));
    }
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = v.bytes[id];
      if (!b) continue;
      let n = 0;
      for (const x of b) {
        let c = n + 1;
        while (c < v.trieEnd[n] && v.trieByte[c] !== x) c = v.trieEnd[c];
        expect(c).toBeLessThan(v.trieEnd[n]);
        n = c;
      }
      expect([...v.toks.subarray(v.tokStart[n], v.tokStart[n + 1])]).toContain(id);
    }
    expect(v.bytes[tok.bosId!]).toBeUndefined(); // control tokens print nothing, match nothing
  });

  it('a character split over byte tokens: € is <0xE2><0x82><0xAC>', () => {
    const c = constraintFor({ grammar: 'root ::= "€" [0-9]' }, tok)!;
    const byteTok = (b: number) => [tokenVocab(tok).idOfText(`<0x${b.toString(16).toUpperCase()}>`)!];
    const [e2] = byteTok(0xe2);
    expect(tok.tokenText(e2)).toBe('<0xE2>');
    expect(c.allows(e2)).toBe(true);
    expect(c.allows(byteTok(0xe3)[0])).toBe(false);
    checkMaskAgainstTokens(c, tok.vocabSize);
    c.accept(e2);
    expect(c.eogAllowed).toBe(false);
    expect(c.allows(byteTok(0x82)[0])).toBe(true);
    expect(c.allows(byteTok(0x83)[0])).toBe(false);
    checkMaskAgainstTokens(c, tok.vocabSize);
    c.accept(byteTok(0x82)[0]);
    c.accept(byteTok(0xac)[0]);
    expect(c.allows(tokenVocab(tok).idOfText('7')!)).toBe(true);
  });

  it('the full mask agrees with checking each token, all through a generation', () => {
    const c = constraintFor({ jsonSchema: STRICT }, tok)!;
    const sampler = new Sampler({ temperature: 1, seed: 5 }, tok.vocabSize);
    const logits = randomLogits(tok.vocabSize, 99);
    const ids: number[] = [];
    for (let step = 0; step < 200 && !c.done; step++) {
      checkMaskAgainstTokens(c, tok.vocabSize);
      const id = c.sample(sampler, logits(), ids);
      if (tok.isEog(id)) break;
      c.accept(id);
      ids.push(id);
    }
  });

  it('20 seeded runs at temperature 1 under a strict schema: JSON that validates, ended by the grammar', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = generate(tok, STRICT, seed);
      expect(r.end, r.text).not.toBe('length');
      const v = JSON.parse(r.text);
      expect(validate(v, STRICT), r.text).toBe('');
    }
  });

  it('EOS comes only where the grammar is complete', () => {
    // A grammar that may stop after any number of digits: EOS is allowed exactly when at least one is there.
    const c = constraintFor({ grammar: 'root ::= [0-9]+' }, tok)!;
    const eos = tok.eosId!;
    expect(c.allows(eos)).toBe(false);
    expect((c.mask()[eos >>> 5] >>> (eos & 31)) & 1).toBe(0);
    c.accept(tokenVocab(tok).idOfText('7')!);
    expect(c.allows(eos)).toBe(true);
    expect(c.done).toBe(false);
    // A sampler that always wants EOS gets a digit first.
    const wantsEos = { sample: (l: Float32Array) => (l[eos] === Number.NEGATIVE_INFINITY ? l.findIndex((x) => x > Number.NEGATIVE_INFINITY) : eos) };
    const fresh = constraintFor({ grammar: 'root ::= [0-9]+' }, tok)!;
    const first = fresh.sample(wantsEos, new Float32Array(tok.vocabSize), []);
    expect(tok.isEog(first)).toBe(false);
    expect(fresh.allows(first)).toBe(true);
  });

  it('checks the sampled token first and masks only when it is rejected', () => {
    const c = constraintFor({ grammar: 'root ::= [a-z]+' }, tok)!;
    const a = tokenVocab(tok).idOfText('a')!;
    let calls = 0;
    const picksA = { sample: () => { calls++; return a; } };
    expect(c.sample(picksA, new Float32Array(tok.vocabSize), [])).toBe(a);
    expect(calls).toBe(1);
    const digit = tokenVocab(tok).idOfText('7')!;
    const prefersDigit = { sample: (l: Float32Array) => { calls++; return l[digit] === Number.NEGATIVE_INFINITY ? a : digit; } };
    calls = 0;
    expect(c.sample(prefersDigit, new Float32Array(tok.vocabSize), [])).toBe(a);
    expect(calls).toBe(2);
  });
});

describe.skipIf(!hasShared)('grammar x llama-bpe vocabulary (128k byte-level BPE)', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadVocab(vocabPath('llama-bpe'));
  });

  it('token bytes are what the decoder prints (Ġ spaces, multi-byte pieces)', () => {
    const v = tokenVocab(tok);
    const ids = tok.encode(' héllo wörld 😀 {"a": 1}', { addBos: false });
    const bytes = ids.flatMap((id) => [...(v.bytes[id] ?? [])]);
    expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(' héllo wörld 😀 {"a": 1}');
  });

  it('<text> tokens resolve to special tokens; the mask then allows exactly them', () => {
    const c = constraintFor({ grammar: 'root ::= <|start_header_id|> "user" <|end_header_id|>' }, tok)!;
    const start = tok.encode('<|start_header_id|>', { addBos: false })[0];
    const bits = c.mask();
    const allowed: number[] = [];
    for (let id = 0; id < tok.vocabSize; id++) if ((bits[id >>> 5] >>> (id & 31)) & 1) allowed.push(id);
    expect(allowed).toEqual([start]);
    c.accept(start);
    expect(c.allows(tok.encode('user', { addBos: false })[0])).toBe(true);
    expect(() => constraintFor({ grammar: 'root ::= <|no_such_token|>' }, tok)).toThrow(/not a single token/);
    expect(() => constraintFor({ grammar: 'root ::= <[999999]>' }, tok)).toThrow(/outside this model's vocabulary/);
  });

  it('the mask agrees with token checks, and seeded runs give JSON that validates', () => {
    const c = constraintFor({ jsonSchema: STRICT }, tok)!;
    checkMaskAgainstTokens(c, tok.vocabSize);
    c.accept(tok.encode('{"', { addBos: false })[0]);
    checkMaskAgainstTokens(c, tok.vocabSize);
    for (let seed = 1; seed <= 4; seed++) {
      const r = generate(tok, STRICT, seed);
      expect(r.end, r.text).not.toBe('length');
      expect(validate(JSON.parse(r.text), STRICT), r.text).toBe('');
    }
  });
});

describe('grammar x a made-up vocabulary (no files)', () => {
  // ids: 0 = EOS, 1 = "a", 2 = "b", 3 = "ab", 4 = a control token (no bytes), 5 = "\xC3" (half of é), 6 = "\xA9"
  const pieces: (number[] | undefined)[] = [undefined, [0x61], [0x62], [0x61, 0x62], undefined, [0xc3], [0xa9]];
  const vocab = { vocabSize: pieces.length, isEog: (id: number) => id === 0, tokenBytes: (id: number) => (pieces[id] ? Uint8Array.from(pieces[id]!) : undefined) };
  const allowed = (c: GrammarConstraint) => pieces.map((_, id) => id).filter((id) => (c.mask()[0] >>> id) & 1);

  it('a token may span several grammar symbols; control tokens never match characters', () => {
    const c = constraintFor({ grammar: 'root ::= "a" "b"+' }, vocab)!;
    expect(allowed(c)).toEqual([1, 3]);
    c.accept(3);
    expect(allowed(c)).toEqual([0, 2]); // complete: EOS allowed; "b" may go on
  });

  it('a character split over two tokens', () => {
    const c = constraintFor({ grammar: 'root ::= "é"' }, vocab)!;
    expect(allowed(c)).toEqual([5]);
    c.accept(5);
    expect(c.eogAllowed).toBe(false);
    expect(allowed(c)).toEqual([6]);
    c.accept(6);
    expect(c.done).toBe(true);
  });

  it('a dead end (no token spells the next character) is a UsageError, not a stream of -Infinity', () => {
    const c = constraintFor({ grammar: 'root ::= "a" "z"' }, vocab)!;
    c.accept(1);
    const sampler = { sample: (l: Float32Array) => l.findIndex((x) => x > Number.NEGATIVE_INFINITY) };
    expect(() => c.sample(sampler, new Float32Array(pieces.length), [])).toThrow(/cannot continue with this model's vocabulary after "a"/);
  });

  it('a tokenizer without token texts is refused', () => {
    expect(() => constraintFor({ grammar: 'root ::= "a"' }, { vocabSize: 3, isEog: () => false })).toThrow(/needs the tokenizer's token texts/);
  });
});

