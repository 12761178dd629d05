// Byte-level BPE (tokenizer.ggml.model = gpt2) on a small synthetic vocabulary: the 256
// byte symbols, a few merges, and special tokens. Checks exact ids where the merges make
// them predictable, round trips of arbitrary UTF-8, pre-tokenizer choice by `pre`.
import { describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { GgufError } from '../../src/errors.ts';
import { Tokenizer, TokenType } from '../../src/tokenizer/index.ts';
import { BYTE_TO_CHAR } from '../../src/tokenizer/vocab.ts';

function makeVocab(pre: string | undefined): TokenizerConfig {
  const tokens = [...BYTE_TO_CHAR]; // ids 0..255 are the bytes
  const types: number[] = tokens.map(() => TokenType.Normal);
  const merges: string[] = [];
  const add = (a: string, b: string) => {
    merges.push(`${a} ${b}`);
    tokens.push(a + b);
    types.push(TokenType.Normal);
  };
  add('h', 'e'); add('l', 'l'); add('he', 'll'); add('hell', 'o'); // hello
  add('Ġ', 'w'); add('o', 'r'); add('Ġw', 'or'); add('Ġwor', 'ld'.slice(0, 1)); add('Ġworl', 'd'); // Ġworld
  add('1', '2'); add('12', '3'); // 123
  add('Ġ', '?'); // Ġ? (a space joins the punctuation after it, unless the pre-tokenizer isolates punctuation)
  tokens.push('xyz'); types.push(TokenType.Normal); // reachable only without merges (ignore_merges)
  const special = (t: string, type: TokenType) => { tokens.push(t); types.push(type); return tokens.length - 1; };
  const bos = special('<|begin_of_text|>', TokenType.Control);
  const eot = special('<|eot_id|>', TokenType.Control);
  const eos = special('<|end_of_text|>', TokenType.Control);
  special('<think>', TokenType.UserDefined);
  return {
    model: 'gpt2', pre, tokens, scores: new Float32Array(0), tokenTypes: Int32Array.from(types), merges,
    bosId: bos, eosId: eos, unkId: undefined, padId: undefined, eotId: eot, addBos: true, addEos: false, chatTemplate: undefined,
  };
}

const id = (tok: Tokenizer, text: string) => {
  for (let i = 0; i < tok.vocabSize; i++) if (tok.tokenText(i) === text) return i;
  throw new Error(`no token ${text}`);
};

describe('gpt2 byte-level BPE tokenizer (synthetic vocab)', () => {
  const tok = Tokenizer.fromConfig(makeVocab('llama-bpe'));

  it('merges words per the ranked merges', () => {
    expect(tok.encode('hello world', { addBos: false })).toEqual([id(tok, 'hello'), id(tok, 'Ġworld')]);
    // BOS from metadata first
    expect(tok.encode('hello')).toEqual([tok.bosId, id(tok, 'hello')]);
  });

  it('round trips arbitrary UTF-8 through the byte symbols', () => {
    for (const s of ['hello world', '  two  spaces\n\nnewlines\t', 'naïve 東京 🦙🚀 😶‍🌫️', "it's 12345 ok?!", '']) {
      expect(tok.decode(tok.encode(s, { addBos: false }))).toBe(s);
    }
  });

  it('streams multi-byte characters whole', () => {
    const text = 'a🦙b東';
    const ids = tok.encode(text, { addBos: false });
    expect(ids.length).toBe(1 + 4 + 1 + 3); // no merges: one token per byte
    const dec = tok.streamDecoder();
    const chunks = ids.map((i) => dec.push(i));
    expect(chunks).toEqual(['a', '', '', '', '🦙', 'b', '', '', '東']);
    expect(dec.flush()).toBe('');
  });

  it('matches special tokens as whole ids; prints control ones only with special', () => {
    const ids = tok.encode('<|begin_of_text|>hello<|eot_id|><think>', { addBos: false });
    expect(ids).toEqual([tok.bosId, id(tok, 'hello'), tok.eotId, id(tok, '<think>')]);
    expect(tok.decode(ids, { special: true })).toBe('<|begin_of_text|>hello<|eot_id|><think>');
    expect(tok.decode(ids)).toBe('hello<think>'); // user-defined <think> always prints
    expect(tok.isEog(tok.eotId as number)).toBe(true);
    expect(tok.isEog(tok.eosId as number)).toBe(true);
    // parseSpecial: false spells the control text out in bytes
    const plain = tok.encode('<|eot_id|>', { addBos: false, parseSpecial: false });
    expect(plain).not.toContain(tok.eotId);
    expect(tok.decode(plain)).toBe('<|eot_id|>'); // plain bytes, so it prints
  });

  it('selects the pre-tokenizer regex by name', () => {
    const n123 = id(tok, '123');
    // llama3 splits digits in runs of up to 3
    expect(tok.encode('123123', { addBos: false })).toEqual([n123, n123]);
    // qwen2 splits every digit
    const qwen = Tokenizer.fromConfig(makeVocab('qwen2'));
    expect(qwen.encode('123', { addBos: false })).toEqual([49, 50, 51].map((c) => BYTE_TO_CHAR.indexOf(String.fromCharCode(c))));
    // llama3 uses whole-word vocabulary hits (ignore_merges); gpt2 does not
    expect(tok.encode('xyz', { addBos: false })).toEqual([id(tok, 'xyz')]);
    const gpt2 = Tokenizer.fromConfig(makeVocab('gpt-2'));
    expect(gpt2.encode('xyz', { addBos: false })).toHaveLength(3);
    // A missing pre is llama.cpp's 'default', which isolates punctuation runs first,
    // so the space before '?' cannot merge with it; gpt-2's ` ?[^\s\p{L}\p{N}]+` keeps them together.
    const dflt = Tokenizer.fromConfig(makeVocab(undefined));
    expect(gpt2.encode('a ?', { addBos: false })).toEqual([id(tok, 'a'), id(tok, 'Ġ?')]);
    expect(dflt.encode('a ?', { addBos: false })).toEqual([id(tok, 'a'), id(tok, 'Ġ'), id(tok, '?')]);
  });

  it('names an unknown pre-tokenizer and missing merges', () => {
    expect(() => Tokenizer.fromConfig(makeVocab('made-up-pre'))).toThrow(GgufError);
    expect(() => Tokenizer.fromConfig(makeVocab('made-up-pre'))).toThrow(/'made-up-pre'/);
    // 'gpt2' is the model name, not a pre-tokenizer llama.cpp knows ('gpt-2' is).
    expect(() => Tokenizer.fromConfig(makeVocab('gpt2'))).toThrow(/'gpt2'/);
    const noMerges = { ...makeVocab('gpt-2'), merges: [] };
    expect(() => Tokenizer.fromConfig(noMerges)).toThrow(/merges/);
  });
});
