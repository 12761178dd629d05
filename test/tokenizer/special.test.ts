// What llama.cpp's vocabulary loader derives beyond the file's token types, and what
// follows from it: the end-of-generation set (generation stops on each member), the
// control type given to text-detected tokens (decoding hides them unless `special`),
// per-model defaults, and Phi-3's rstrip. The real-vocabulary expectations were read
// from llama.cpp itself (llama_vocab_is_eog / llama_token_get_attr through
// node-llama-cpp 3.21.1 on the same files).
import { beforeAll, describe, expect, it } from 'vitest';
import type { GenerationStats, Token } from '../../src/api.ts';
import { type TokenizerConfig, readConfig } from '../../src/config.ts';
import { type ForwardModel, Session } from '../../src/generate.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { Tokenizer, type TokenizerConfigIn, TokenType } from '../../src/tokenizer/index.ts';
import { BYTE_TO_CHAR } from '../../src/tokenizer/vocab.ts';
import { hasShared } from '../shared.ts';
import { loadVocab, vocabPath } from './vocab-files.ts';

/** A byte-level vocabulary: the 256 byte symbols, then the given extra tokens. */
function bpeVocab(extra: [string, TokenType][], over: Partial<TokenizerConfigIn> = {}): TokenizerConfigIn {
  const tokens = [...BYTE_TO_CHAR, ...extra.map(([t]) => t)];
  const types = Int32Array.from([...BYTE_TO_CHAR.map(() => TokenType.Normal), ...extra.map(([, ty]) => ty)]);
  return {
    model: 'gpt2', pre: 'qwen2', tokens, scores: new Float32Array(0), tokenTypes: types, merges: ['a b'],
    bosId: undefined, eosId: undefined, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: undefined,
    ...over,
  };
}
/** EOG ids among the extra tokens (without EOS metadata, byte symbol 11 is llama.cpp's default EOS; see below). */
const extraEog = (tok: Tokenizer) => tok.eogIds.filter((id) => id >= 256);
const idOf = (tok: Tokenizer, text: string) => {
  for (let i = 0; i < tok.vocabSize; i++) if (tok.tokenText(i) === text) return i;
  throw new Error(`no token ${text}`);
};

describe('end-of-generation set (llama.cpp load rules, synthetic vocabularies)', () => {
  it('finds EOT/EOM by text, makes them control, and puts them with EOS in the EOG set', () => {
    const tc = bpeVocab([['<|endoftext|>', TokenType.Control], ['<|im_start|>', TokenType.UserDefined], ['<|im_end|>', TokenType.UserDefined], ['<|eom_id|>', TokenType.Normal]]);
    const tok = Tokenizer.fromConfig({ ...tc, eosId: 256 });
    const [eos, start, end, eom] = [256, 257, 258, 259];
    // <|im_end|> precedes <|endoftext|> in llama.cpp's EOT list (and is what it picks for Qwen).
    expect(tok.eotId).toBe(end);
    expect(tok.eomId).toBe(eom);
    expect(tok.eogIds).toEqual([eos, end, eom]);
    for (const id of [eos, end, eom]) expect(tok.isEog(id)).toBe(true);
    expect(tok.isEog(start)).toBe(false);
    // The file said user-defined/normal; llama.cpp ORs in the control attribute.
    expect(tok.tokenType(end)).toBe(TokenType.Control);
    expect(tok.tokenType(eom)).toBe(TokenType.Control);
    expect(tok.tokenType(start)).toBe(TokenType.UserDefined);
  });

  it('keeps a metadata EOT id and still ends on every EOG text', () => {
    const tc = bpeVocab([['<|eot_id|>', TokenType.Control], ['<end_of_turn>', TokenType.Control], ['<|end|>', TokenType.Control]], { eotId: 257 });
    const tok = Tokenizer.fromConfig(tc);
    expect(tok.eotId).toBe(257);
    expect(extraEog(tok)).toEqual([256, 257, 258]);
  });

  it('ends on FIM pad/repo/file-sep but not on FIM prefix, which still becomes control', () => {
    const tc = bpeVocab([['<|fim_prefix|>', TokenType.UserDefined], ['<|fim_pad|>', TokenType.UserDefined], ['<|repo_name|>', TokenType.UserDefined], ['<|file_sep|>', TokenType.UserDefined]]);
    const tok = Tokenizer.fromConfig(tc);
    expect(extraEog(tok)).toEqual([257, 258, 259]);
    expect(tok.tokenType(256)).toBe(TokenType.Control);
  });

  it("gpt-oss: <|end|> is not EOG next to <|return|> and <|call|>, and it and <|channel|> always print", () => {
    const tc = bpeVocab([['<|return|>', TokenType.Control], ['<|call|>', TokenType.Control], ['<|end|>', TokenType.Control], ['<|channel|>', TokenType.Control]]);
    const tok = Tokenizer.fromConfig(tc);
    expect(extraEog(tok)).toEqual([256, 257]);
    expect(tok.tokenType(258)).toBe(TokenType.UserDefined);
    expect(tok.tokenType(259)).toBe(TokenType.UserDefined);
    expect(tok.decode([259, 258])).toBe('<|channel|><|end|>');
    // Without <|call|>, <|end|> stays an ending token.
    const plain = Tokenizer.fromConfig(bpeVocab([['<|return|>', TokenType.Control], ['<|end|>', TokenType.Control]]));
    expect(extraEog(plain)).toEqual([256, 257]);
  });

  it('Gemma 4: </s> is plain text next to <|tool_response>', () => {
    const tok = Tokenizer.fromConfig(bpeVocab([['</s>', TokenType.Control], ['<|tool_response>', TokenType.Control]]));
    expect(extraEog(tok)).toEqual([257]);
    expect(tok.tokenType(256)).toBe(TokenType.Normal);
    expect(extraEog(Tokenizer.fromConfig(bpeVocab([['</s>', TokenType.Control]])))).toEqual([256]);
  });

  it("falls back to llama.cpp's default ids when the metadata has none", () => {
    // Byte-level BPE: Falcon's <|endoftext|> = 11 (here the byte symbol ','), GLM-4 drops the BOS default.
    const bpe = Tokenizer.fromConfig(bpeVocab([]));
    expect([bpe.bosId, bpe.eosId, bpe.eogIds]).toEqual([11, 11, [11]]);
    const given = Tokenizer.fromConfig(bpeVocab([['<|x|>', TokenType.Control]], { bosId: 256, eosId: 256 }));
    expect([given.bosId, given.eogIds]).toEqual([256, [256]]);
    expect(Tokenizer.fromConfig(bpeVocab([], { pre: 'chatglm-bpe' })).bosId).toBeUndefined();
    // SentencePiece: Llama's 1 and 2.
    const spm: TokenizerConfig = {
      model: 'llama', pre: undefined, tokens: ['<unk>', '<s>', '</s>', '▁', 'a', '▁a'], scores: Float32Array.of(0, 0, 0, -2, -2, -1),
      tokenTypes: Int32Array.of(2, 3, 3, 1, 1, 1), merges: [],
      bosId: undefined, eosId: undefined, unkId: undefined, padId: undefined, eotId: undefined, addBos: true, addEos: false, chatTemplate: undefined,
    };
    const t = Tokenizer.fromConfig(spm);
    expect([t.bosId, t.eosId, t.eogIds]).toEqual([1, 2, [2]]);
    expect(t.encode('a')).toEqual([1, 5]);
  });
});

describe('decoding control tokens', () => {
  const tc = bpeVocab([['<|begin|>', TokenType.Control], ['<think>', TokenType.UserDefined], ['<unused0>', TokenType.Unused], ['<?>', TokenType.Unknown]], { bosId: 256 });
  const tok = Tokenizer.fromConfig(tc);
  const hi = [...'hi'].map((c) => BYTE_TO_CHAR.indexOf(c));
  const ids = [256, ...hi, 257, 258, 259];

  it('prints no control or unknown token unless asked, as llama.cpp without --special', () => {
    expect(tok.decode(ids)).toBe('hi<think>');
    expect(tok.decode(ids, { special: true })).toBe('<|begin|>hi<think><?>');
    const s = tok.streamDecoder();
    expect(ids.map((i) => s.push(i))).toEqual(['', 'h', 'i', '<think>', '', '']);
  });

  it('keeps the ids and the deprecated skipSpecial switch', () => {
    expect(tok.encode('<|begin|>hi<think>')).toEqual([256, ...hi, 257]);
    expect(tok.decode(ids, { skipSpecial: false })).toBe('<|begin|>hi<think><?>');
    expect(tok.decode(ids, { skipSpecial: true })).toBe('hi<think>');
    expect(tok.decode(ids, { skipSpecial: false, special: false })).toBe('hi<think>');
  });

  it('passes a generated U+FEFF through instead of eating it as a byte-order mark', () => {
    const bom = [0xef, 0xbb, 0xbf].map((b) => b); // byte symbols are ids 0..255 in byte order
    expect(tok.decode([...bom, ...hi])).toBe('\uFEFFhi');
  });
});

describe('generation stops on every EOG token', () => {
  const tc = bpeVocab([['<|endoftext|>', TokenType.Control], ['<|im_end|>', TokenType.UserDefined], ['<|eom_id|>', TokenType.Control], ['<end_of_turn>', TokenType.Control], ['<|end|>', TokenType.Control], ['<|im_start|>', TokenType.Control]], { eosId: 256 });
  const tok = Tokenizer.fromConfig(tc);
  const a = BYTE_TO_CHAR.indexOf('a');

  async function run(script: number[]) {
    let i = 0;
    const model: ForwardModel = {
      contextLength: 64,
      forward: async () => { throw new Error('greedy only'); },
      forwardArgmax: async () => script[Math.min(i++, script.length - 1)],
    };
    let stats: GenerationStats | undefined;
    const out: Token[] = [];
    for await (const t of new Session(model, tok).generate([a], { temperature: 0, maxTokens: 10 }, (s) => (stats = s))) out.push(t);
    return { text: out.map((t) => t.text).join(''), stats: stats! };
  }

  it('EOS, EOT, EOM, <end_of_turn>, <|end|> each end it; a non-ending control token prints nothing', async () => {
    for (const end of ['<|endoftext|>', '<|im_end|>', '<|eom_id|>', '<end_of_turn>', '<|end|>']) {
      const r = await run([a, a, idOf(tok, end), a]);
      expect([end, r.stats.stopReason, r.stats.generatedTokens, r.text]).toEqual([end, 'eos', 3, 'aa']);
    }
    const r = await run([a, idOf(tok, '<|im_start|>'), a]);
    expect([r.stats.stopReason, r.text]).toEqual(['length', 'a'.repeat(9)]);
  });
});

/** Per vocabulary: EOG ids (with their text), the EOT id, and a token the loader made control. */
const REAL: Record<string, { eog: [number, string][]; eot: number | undefined; madeControl?: number }> = {
  'command-r': { eog: [[0, '<PAD>'], [255001, '<|END_OF_TURN_TOKEN|>']], eot: undefined },
  'deepseek-coder': { eog: [[32014, '<｜end▁of▁sentence｜>']], eot: 32014 },
  'deepseek-llm': { eog: [[100001, '<｜end▁of▁sentence｜>']], eot: 100001 },
  falcon: { eog: [[11, '<|endoftext|>']], eot: 11 },
  'gpt-2': { eog: [[50256, '<|endoftext|>']], eot: 50256 },
  'llama-bpe': { eog: [[128001, '<|end_of_text|>'], [128009, '<|eot_id|>']], eot: 128009 },
  mpt: { eog: [[0, '<|endoftext|>']], eot: 0 },
  'phi-3': { eog: [[2, '</s>'], [32000, '<|endoftext|>'], [32007, '<|end|>']], eot: 32007 },
  qwen2: { eog: [[128247, '</s>'], [151643, '<|endoftext|>'], [151645, '<|im_end|>']], eot: 151645, madeControl: 128247 },
  refact: { eog: [[0, '<|endoftext|>'], [4, '<fim_pad>'], [18, '<reponame>']], eot: 0 },
  starcoder: { eog: [[0, '<|endoftext|>'], [4, '<fim_pad>']], eot: 0 },
};

describe.skipIf(!hasShared)('end-of-generation sets of the real vocabularies (as llama.cpp loads them)', () => {
  for (const [name, want] of Object.entries(REAL)) {
    it(name, async () => {
      const tok = await loadVocab(vocabPath(name));
      expect(tok.eogIds.map((id) => [id, tok.tokenText(id)])).toEqual(want.eog);
      expect(tok.eotId).toBe(want.eot);
      for (const [id] of want.eog) expect(tok.decode([id])).toBe(''); // control: hidden without `special`
      if (want.madeControl !== undefined) {
        expect(tok.tokenType(want.madeControl)).toBe(TokenType.Control);
        expect(tok.decode([want.madeControl], { special: true })).toBe(tok.tokenText(want.madeControl));
      }
    }, 60_000);
  }
});

describe.skipIf(!hasShared)('Phi-3: special tokens swallow the whitespace after them (llama.cpp rstrip)', () => {
  let phi3: Tokenizer;
  beforeAll(async () => {
    phi3 = await loadVocab(vocabPath('phi-3'));
  });

  it("tokenizes a chat turn as llama.cpp does, and only with Phi-3's name", async () => {
    const turn = '<|user|>\nHello<|end|>\n<|assistant|>\n';
    expect(phi3.encode(turn, { addBos: false })).toEqual([32010, 15043, 32007, 32001]);
    // <s> is exempt, and only ASCII whitespace is swallowed (U+3000 stays).
    expect(phi3.encode('<s>\n x', { addBos: false })).toEqual([1, 29871, 13, 921]);
    expect(phi3.encode('<|end|>\u3000a', { addBos: false })).toEqual([32007, 29871, 30358, 29874]);
    // Without special-token parsing nothing is matched, so nothing is stripped.
    expect(phi3.encode(turn, { addBos: false, parseSpecial: false })).toContain(13);
    const f = await openGguf(vocabPath('phi-3'));
    const tc = readConfig(f).tokenizer!;
    await f.close();
    // Config carries general.name, so the file's own tokenizer strips; without the name, nothing is stripped.
    expect(tc.modelName).toMatch(/phi.?3/i);
    expect(Tokenizer.fromConfig(tc).encode(turn, { addBos: false })).toEqual([32010, 15043, 32007, 32001]);
    expect(Tokenizer.fromConfig({ ...tc, modelName: undefined }).encode(turn, { addBos: false })).toContain(13);
  });
});
