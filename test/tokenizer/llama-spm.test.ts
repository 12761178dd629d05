// The 32k Llama SentencePiece vocabulary against llama.cpp's own tokenizer test cases
// (ggml-vocab-llama-spm.gguf.inp/.out), plus round trips and streaming detokenization.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { GgufError, UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { hasShared, sharedModel } from '../shared.ts';

const VOCAB = 'ggml-vocab-llama-spm.gguf';

/** .inp is `case + "\n__ggml_vocab_test__\n"` repeated; .out has one line of ids per case. */
function loadCases(): { text: string; ids: number[] }[] {
  const inp = readFileSync(`${sharedModel(VOCAB)}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  expect(inp.pop()).toBe(''); // the file ends with a separator
  const out = readFileSync(`${sharedModel(VOCAB)}.out`, 'utf8').split('\n');
  return inp.map((text, i) => ({ text, ids: out[i].trim() === '' ? [] : out[i].trim().split(/\s+/).map(Number) }));
}

const STREAM_TEXTS = [
  'Hello, world! 🦙🚀 naïve café — 東京タワーは高い。',
  '😶‍🌫️👨‍👩‍👧‍👦 ✅ ⚠️ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 €100',
  '中文测试：我想在apple工作1314151天～ 한국어 テスト',
  '  leading spaces\n\ttabs\n\n and ﬁ ligature ﬀ',
];

describe.skipIf(!hasShared)('llama SentencePiece tokenizer (32k vocab)', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    const f = await openGguf(sharedModel(VOCAB));
    const tc = readConfig(f).tokenizer;
    await f.close();
    if (!tc) throw new Error('vocab file has no tokenizer');
    tok = Tokenizer.fromConfig(tc);
  });

  it('reads ids and flags from metadata', () => {
    expect(tok.kind).toBe('spm');
    expect(tok.vocabSize).toBe(32000);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.isEog(2)).toBe(true);
    expect(tok.isEog(1)).toBe(false);
    expect(tok.tokenText(15043)).toBe('▁Hello');
  });

  it("reproduces every llama.cpp test case (.inp -> .out, no BOS)", () => {
    const cases = loadCases();
    expect(cases.length).toBe(46);
    const failures = cases
      .map((c) => ({ text: c.text, want: c.ids, got: tok.encode(c.text, { addBos: false }) }))
      .filter((r) => JSON.stringify(r.want) !== JSON.stringify(r.got));
    expect(failures).toEqual([]);
  });

  it('round trips every test case and awkward strings', () => {
    const texts = [...loadCases().map((c) => c.text), ...STREAM_TEXTS, ' ', '\u0000x', 'a\u200db', '<s> spaced </s>'];
    // special: true, so '<s>'/'</s>' typed in the text come back (they encode to control ids).
    for (const s of texts) expect(tok.decode(tok.encode(s, { addBos: false }), { special: true })).toBe(s);
  });

  it('adds BOS per metadata and parses special-token text', () => {
    expect(tok.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(tok.encode('Hello world', { addBos: false })).toEqual([15043, 3186]);
    expect(tok.encode('<s>Hello</s>', { addBos: false })).toEqual([1, 15043, 2]);
    const plain = tok.encode('<s>Hello', { addBos: false, parseSpecial: false });
    expect(plain).not.toContain(1);
    expect(tok.decode(plain)).toBe('<s>Hello');
  });

  it('hides BOS/EOS unless special; stripLeadingSpace false keeps every space, as llama.cpp prints', () => {
    expect(tok.decode([1, 15043, 3186, 2])).toBe('Hello world');
    expect(tok.decode([1, 15043, 3186, 2], { special: true })).toBe('<s>Hello world</s>');
    expect(tok.decode([3186])).toBe('world');
    expect(tok.decode([3186], { stripLeadingSpace: false })).toBe(' world');
    // After a control token too: llama.cpp's pieces keep the space (generation output).
    expect(tok.decode([1, 15043], { stripLeadingSpace: false })).toBe(' Hello');
    expect(tok.decode([1, 15043])).toBe('Hello');
  });

  it('streams whole characters only, and the stream equals the full decode', () => {
    // 🦙 (U+1F999) is not a piece: it goes through byte fallback <0xF0><0x9F><0xA6><0x99>.
    const llama = tok.encode('🦙', { addBos: false });
    expect(llama.map((id) => tok.tokenText(id))).toEqual(['▁', '<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
    const s = tok.streamDecoder();
    expect(llama.map((id) => s.push(id))).toEqual(['', '', '', '', '🦙']);
    expect(s.flush()).toBe('');

    for (const text of STREAM_TEXTS) {
      const ids = tok.encode(text, { addBos: true });
      const dec = tok.streamDecoder({ skipSpecial: true });
      const chunks = ids.map((id) => dec.push(id));
      chunks.push(dec.flush());
      for (const c of chunks) expect(c).not.toContain('\uFFFD');
      expect(chunks.join('')).toBe(tok.decode(ids, { skipSpecial: true }));
      expect(chunks.join('')).toBe(text);
    }
  });

  it('strips the SentencePiece space only at the start of a stream', () => {
    const ids = tok.encode('Once upon a time', { addBos: false });
    const dec = tok.streamDecoder();
    const chunks = ids.map((id) => dec.push(id));
    expect(chunks[0]).toBe('Once');
    expect(chunks.slice(1).every((c) => c.startsWith(' '))).toBe(true);
  });

  it('add_space_prefix false (Gemma-style files): no leading ▁, and none stripped back off', async () => {
    // Expected ids: llama.cpp on this vocabulary with tokenizer.ggml.add_space_prefix = false.
    const f = await openGguf(sharedModel(VOCAB));
    const tc = readConfig(f).tokenizer!;
    await f.close();
    const bare = Tokenizer.fromConfig({ ...tc, addSpacePrefix: false });
    expect(bare.encode('Hello world', { addBos: false })).toEqual([10994, 3186]); // Hello ▁world
    expect(bare.encode('<s>Hello</s> world', { addBos: false })).toEqual([1, 10994, 2, 3186]);
    expect(bare.decode([10994, 3186])).toBe('Hello world');
    expect(bare.decode([3186])).toBe(' world');
  });

  it('rejects out-of-range ids with a UsageError', () => {
    expect(() => tok.decode([32000])).toThrow(UsageError);
    expect(() => tok.decode([-1])).toThrow(/outside the vocabulary/);
  });

  it('encodes a few KB of text in one call', () => {
    const text = readFileSync(`${sharedModel(VOCAB)}.inp`, 'utf8').repeat(4);
    const ids = tok.encode(text, { addBos: false });
    expect(ids.length).toBeGreaterThan(1000);
    expect(tok.decode(ids)).toBe(text);
  });
});

describe('Tokenizer.fromConfig', () => {
  it('names an unknown tokenizer model', () => {
    const tc = {
      model: 'rwkv', pre: undefined, tokens: ['a'], scores: new Float32Array(0), tokenTypes: new Int32Array(0), merges: [],
      bosId: undefined, eosId: undefined, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: undefined,
    };
    expect(() => Tokenizer.fromConfig(tc)).toThrow(GgufError);
    expect(() => Tokenizer.fromConfig(tc)).toThrow(/'rwkv'/);
  });
});
