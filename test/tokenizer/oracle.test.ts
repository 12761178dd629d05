// qllm's tokenizer against llama.cpp's own (node-llama-cpp 3.21.1 = llama.cpp v0.4.0,
// the version the shared vocab cases come from) on a few hundred deterministic strings
// per vocabulary: unicode, emoji, code, whitespace runs, numbers, special-token text;
// with special-token text parsed and as plain text, and BOS/EOS as llama.cpp adds them.
// First, per vocabulary, the oracle itself must reproduce llama.cpp's .inp/.out cases.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TokenizerConfig, readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { disposeOracle, oracleTokenize, skipWithoutOracle } from '../oracle/llama-cpp.ts';
import { FIXED_STRINGS, randomStrings } from '../oracle/strings.ts';
import { kv } from '../../src/gguf/writer.ts';
import { rewriteMeta } from '../gguf/remeta.ts';
import { hasShared, sharedModel } from '../shared.ts';

// No gpt-4o (o200k) vocabulary ships in ../shared: Llama 3's vocabulary relabelled as
// tokenizer.ggml.pre = 'gpt-4o' checks the pre-tokenizer regex (the merges are the file's).
const GPT4O_VOCAB = join(mkdtempSync(join(tmpdir(), 'qllm-gpt4o-')), 'ggml-vocab-gpt-4o.gguf');

const VOCABS: Record<string, string> = {
  'llama-spm': 'ggml-vocab-llama-spm.gguf',
  'gpt-4o (llama-bpe merges)': GPT4O_VOCAB,
  ...Object.fromEntries(
    ['llama-bpe', 'qwen2', 'command-r', 'phi-3', 'gpt-2', 'falcon', 'deepseek-llm', 'deepseek-coder', 'mpt', 'starcoder', 'refact'].map((n) => [n, `vocab/ggml-vocab-${n}.gguf`]),
  ),
};

// Vocabularies qllm refused (unknown tokenizer.ggml.pre) when this test was written; their
// pre-tokenizers were being added at the time. Still refused -> skipped with this reason;
// accepted -> compared like the rest. A refusal of any other vocabulary fails.
const KNOWN_REFUSED: Record<string, string> = {
  'gpt-2': "pre 'gpt-2'",
  falcon: "pre 'falcon'",
  'deepseek-llm': "pre 'deepseek-llm'",
  'deepseek-coder': "pre 'deepseek-coder'",
};

type Mode = 'special' | 'plain' | 'bos';
interface KnownDiff { reason: string; affects?: (s: string) => boolean }
// Differences from llama.cpp that qllm has today. Each must still show up (else the entry
// is stale and fails, asking to be removed) and, where `affects` is given, every
// mismatching string must be of that kind: the other strings still have to agree.
// Known differences from llama.cpp, per vocabulary and mode (none at present): each
// entry's test passes only while the difference exists, and says to remove it once fixed.
const KNOWN_DIFFS: Record<string, Partial<Record<Mode, KnownDiff>>> = {};

const STRINGS = [...FIXED_STRINGS, ...randomStrings(200)];
const BOS_STRINGS = ['Hello', ' Hello world', '<s>x', '', '\n'];

/** .inp is `case + "\n__ggml_vocab_test__\n"` repeated; .out has one line of ids per case (add_special and parse_special false). */
function llamaCases(path: string): { text: string; ids: number[] }[] {
  const inp = readFileSync(`${path}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  inp.pop();
  const out = readFileSync(`${path}.out`, 'utf8').split('\n');
  return inp.map((text, i) => ({ text, ids: out[i].trim() === '' ? [] : out[i].trim().split(/\s+/).map(Number) }));
}

async function tokenizerConfig(path: string): Promise<TokenizerConfig> {
  const f = await openGguf(path);
  try {
    const tc = readConfig(f).tokenizer;
    if (!tc) throw new Error(`${path} has no tokenizer`);
    return tc;
  } finally {
    await f.close();
  }
}

const skip = !hasShared || (await skipWithoutOracle('test/tokenizer/oracle.test.ts'));

// Decided at collection time, so a refused vocabulary can be reported as a skip. Building
// the encoder (the expensive part) waits for beforeAll.
const configs = new Map<string, { tc?: TokenizerConfig; refusal?: string }>();
const vocabPath = (file: string) => (isAbsolute(file) ? file : sharedModel(file));
if (!skip) {
  await rewriteMeta(sharedModel('vocab/ggml-vocab-llama-bpe.gguf'), GPT4O_VOCAB, { 'tokenizer.ggml.pre': kv.str('tokenizer.ggml.pre', 'gpt-4o') });
  for (const [name, file] of Object.entries(VOCABS)) {
    if (!existsSync(vocabPath(file))) {
      configs.set(name, { refusal: `missing file ${vocabPath(file)}` });
      continue;
    }
    const tc = await tokenizerConfig(vocabPath(file));
    try {
      Tokenizer.fromConfig(tc);
      configs.set(name, { tc });
    } catch (e) {
      configs.set(name, { refusal: (e as Error).message });
    }
  }
}

interface Mismatch { text: string; ours: number[]; llama: number[] }

describe.skipIf(skip)('tokenizer vs llama.cpp (node-llama-cpp oracle)', () => {
  afterAll(async () => {
    await disposeOracle();
    rmSync(dirname(GPT4O_VOCAB), { recursive: true, force: true });
  });

  it('probes a few hundred distinct strings', () => {
    expect(STRINGS.length).toBeGreaterThanOrEqual(250);
    expect(new Set(STRINGS).size).toBeGreaterThan(STRINGS.length - 5);
    expect(randomStrings(3)).toEqual(randomStrings(3)); // seeded: the same strings everywhere
  });

  for (const [name, file] of Object.entries(VOCABS)) {
    describe(name, () => {
      const path = vocabPath(file);
      const entry = configs.get(name) ?? {};

      it.skipIf(!existsSync(`${path}.inp`))('the oracle reproduces llama.cpp\'s own .inp/.out cases', async () => {
        const cases = llamaCases(path);
        expect(cases.length).toBeGreaterThan(10);
        const bad: Mismatch[] = [];
        for (const c of cases) {
          const got = await oracleTokenize(path, c.text);
          if (!same(got, c.ids)) bad.push({ text: c.text, ours: got, llama: c.ids });
        }
        expect(bad).toEqual([]);
      });

      if (entry.refusal !== undefined && name in KNOWN_REFUSED) {
        it.skip(`qllm refuses it today (known: ${KNOWN_REFUSED[name]}): ${entry.refusal.slice(0, 120)}`, () => {});
        return;
      }
      if (entry.refusal !== undefined) {
        it('qllm loads it', () => {
          throw new Error(`qllm refuses ${name}: ${entry.refusal}`);
        });
        return;
      }

      let tok: Tokenizer;
      beforeAll(() => {
        tok = Tokenizer.fromConfig(entry.tc!);
      });

      const compare = async (mode: Mode): Promise<Mismatch[]> => {
        const bad: Mismatch[] = [];
        const texts = mode === 'bos' ? BOS_STRINGS : STRINGS;
        let total = 0;
        for (const text of texts) {
          const ours = mode === 'bos'
            ? tok.encode(text) // the model's defaults: add BOS/EOS per metadata, parse special text
            : tok.encode(text, { addBos: false, addEos: false, parseSpecial: mode === 'special' });
          const llama = await oracleTokenize(path, text, mode === 'bos' ? { addSpecial: true, parseSpecial: true } : { parseSpecial: mode === 'special' });
          total += llama.length;
          if (!same(ours, llama)) bad.push({ text, ours, llama });
        }
        expect(total).toBeGreaterThan(texts.length / 2); // the oracle really tokenized something
        return bad;
      };

      for (const mode of ['special', 'plain', 'bos'] as const) {
        const what = { special: 'special-token text parsed', plain: 'special-token text as plain text', bos: "BOS/EOS as llama.cpp's add_special" }[mode];
        const known = KNOWN_DIFFS[name]?.[mode];
        if (!known) {
          it(`same ids as llama.cpp, ${what}`, async () => {
            const bad = await compare(mode);
            expect(bad.slice(0, 5), `${bad.length} of ${mode === 'bos' ? BOS_STRINGS.length : STRINGS.length} strings differ`).toEqual([]);
          });
        } else {
          it(`same ids as llama.cpp, ${what}, but for a known difference: ${known.reason}`, async () => {
            const bad = await compare(mode);
            expect(bad.length, `qllm now matches llama.cpp here: remove KNOWN_DIFFS['${name}'].${mode}`).toBeGreaterThan(0);
            if (known.affects) expect(bad.filter((m) => !known.affects!(m.text)).slice(0, 5)).toEqual([]);
          });
        }
      }
    });
  }
});

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
