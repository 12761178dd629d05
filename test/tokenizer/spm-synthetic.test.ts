// A tiny SentencePiece vocabulary with a token that spans a ▁ mid-piece ("a▁b"): the
// fast per-word split must switch off so that BPE over the whole text can still find it.
import { describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { Tokenizer, TokenType } from '../../src/tokenizer/index.ts';
import { wordSplitIsExact } from '../../src/tokenizer/spm.ts';

function spm(extra: [string, number][]): TokenizerConfig {
  const base: [string, number, TokenType][] = [['<unk>', 0, TokenType.Unknown], ['<s>', 0, TokenType.Control], ['</s>', 0, TokenType.Control]];
  for (let b = 0; b < 256; b++) base.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0, TokenType.Byte]);
  const all = [...base, ...extra.map(([t, s]): [string, number, TokenType] => [t, s, TokenType.Normal])];
  return {
    model: 'llama', pre: undefined, tokens: all.map((x) => x[0]), scores: Float32Array.from(all.map((x) => x[1])),
    tokenTypes: Int32Array.from(all.map((x) => x[2])), merges: [], bosId: 1, eosId: 2, unkId: 0, padId: undefined, eotId: undefined,
    addBos: true, addEos: false, chatTemplate: undefined,
  };
}

describe('SentencePiece BPE on a synthetic vocabulary', () => {
  const pieces: [string, number][] = [['▁', -1], ['a', -2], ['b', -3], ['▁a', -4], ['a▁', -1.5], ['a▁b', -1.6]];

  it('finds merges across a ▁ when the vocabulary has such a token', () => {
    const tc = spm(pieces);
    expect(wordSplitIsExact(tc.tokens, tc.tokenTypes)).toBe(false);
    const tok = Tokenizer.fromConfig(tc);
    const ids = tok.encode('a b', { addBos: false });
    expect(ids.map((i) => tok.tokenText(i))).toEqual(['▁', 'a▁b']);
    expect(tok.decode(ids)).toBe('a b');
  });

  it('uses byte fallback for characters outside the vocabulary and BOS from metadata', () => {
    const tc = spm(pieces.filter(([t]) => !t.includes('▁', 1)));
    expect(wordSplitIsExact(tc.tokens, tc.tokenTypes)).toBe(true);
    const tok = Tokenizer.fromConfig(tc);
    const ids = tok.encode('a é');
    expect(ids.map((i) => tok.tokenText(i))).toEqual(['<s>', '▁a', '▁', '<0xC3>', '<0xA9>']);
    expect(tok.decode(ids, { skipSpecial: true })).toBe('a é');
  });
});
