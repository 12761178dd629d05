// Byte-level BPE (`tokenizer.ggml.model = gpt2`: GPT-2, Llama 3, Qwen) -> tokenizer.json
// for @huggingface/tokenizers. The GGUF carries the real merges; what it does not carry
// is the pre-tokenizer regex, which llama.cpp selects by the name in tokenizer.ggml.pre.
// The table below maps those names to llama.cpp's regexes, which @huggingface/tokenizers
// compiles through its Oniguruma-to-JS rewrite.
import type { TokenizerConfig } from '../config.ts';
import { GgufError } from '../errors.ts';
import { addedTokens } from './vocab.ts';

// llama.cpp's regexes run through its own engine: a hand-written matcher for the GPT-2,
// Llama 3 and Qwen2 patterns, std::regex for the rest. Where the two could differ from
// JS (via @huggingface/tokenizers' Oniguruma-to-JS rewrite) the patterns below say so:
// - `\s` is rewritten to \p{White_Space}, exactly llama.cpp's whitespace set.
// - std::regex `$` is the end of the piece being split; Oniguruma's `$` is the end of a
//   line, so `\z` stands in for it.
// - llama.cpp turns non-ASCII whitespace into \x0B before matching a pattern written
//   with literal non-ASCII ranges, so such ranges never match whitespace: notWs().
// GPT2 ends in `|\s+`, which llama.cpp's pattern lacks but its hand-written matcher
// (used for this exact pattern, also inside falcon/default) implements.
const GPT2_LLAMA = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const GPT2 = `${GPT2_LLAMA}|\\s+`;
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// LLAMA_VOCAB_PRE_TYPE_GPT4O (gpt-oss's o200k_harmony, Llama 4): llama.cpp rewrites
// tiktoken's case classes ([\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}...]+) as lookaheads over
// [^a-z] / [^A-Z], because its std::regex sees every non-ASCII letter collapsed into one
// byte outside both ranges. The rewrite is what it runs, so it is what we run: a
// non-ASCII letter counts as both upper- and lower-case ("aÉb" is one piece, not two).
const GPT4O =
  "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const notWs = (cls: string) => `(?:(?!\\s)${cls})`;
const CJK = notWs('[一-龥ࠀ-一가-퟿]'); // deepseek: CJK ideographs, U+0800..U+4E00, Hangul
const DEEPSEEK_LETTERS =
  '[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\u{1F7D}ᾀ-ᾴᾶ-ᾼ\\u{1FBE}ῂ-ῄῆ-ῌῐ-\\u{1FD3}ῖ-\\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\u{2126}ℨ\\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]';

interface PreSpec { regexes: string[]; ignoreMerges: boolean }

/**
 * tokenizer.ggml.pre name -> regexes applied in turn (each splits the previous pieces,
 * keeping matches and the text between them), as llama_vocab::impl::load maps the name
 * to a pre-type and llm_tokenizer_bpe maps the pre-type to regexes. Names llama.cpp
 * knows but qllm does not list are refused rather than guessed.
 */
const PRE: Record<string, PreSpec> = {};
const def = (names: string[], regexes: string[], ignoreMerges = false) => { for (const n of names) PRE[n] = { regexes, ignoreMerges }; };
// LLAMA_VOCAB_PRE_TYPE_DEFAULT: a missing or 'default' pre (Phi-2-era GGUFs).
def(['default'], ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]']);
def(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert', 'exaone4',
  'mpt', 'olmo', 'jais', 'trillion', 'granite-docling'], [GPT2]);
def(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'], [LLAMA3], true);
def(['dbrx', 'smaug-bpe', 'glm4', 'chatglm-bpe'], [LLAMA3]); // same regex, merges not skipped
def(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'megrez', 'stablelm2', 'hunyuan', 'solar-open'], [QWEN2]);
def(['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b', 'mellum2'], ['\\p{N}', GPT2]);
def(['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'], [GPT4O]);
def(['falcon'], ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]']);
def(['deepseek-llm'], [
  '[\\r\\n]',
  `\\s?${notWs(DEEPSEEK_LETTERS)}+`,
  `\\s?${notWs('[!-/:-~！-／：-～‘-‟　-。]')}+`,
  '\\s+\\z',
  `${CJK}+`,
  '\\p{N}+',
]);
def(['deepseek-coder'], ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', `${CJK}+`, '\\p{N}']);

export const supportedPre = () => Object.keys(PRE).sort();

/** Throws GgufError for an unknown `pre` or missing merges (cheap; called at load). */
export function checkGpt2(tc: TokenizerConfig): PreSpec {
  // llama.cpp treats a missing tokenizer.ggml.pre as 'default' (with a warning).
  const preName = tc.pre ?? 'default';
  const pre = PRE[preName];
  if (!pre) {
    throw new GgufError(`tokenizer.ggml.pre = '${preName}' is not a pre-tokenizer qllm knows (known: ${supportedPre().join(', ')}): use a model with one of these, or add its regex to src/tokenizer/bpe.ts`);
  }
  if (tc.merges.length === 0) {
    throw new GgufError(`tokenizer.ggml.merges is missing or empty: a gpt2 (byte-level BPE) vocabulary needs its merges; re-convert the model`);
  }
  return pre;
}

/** The tokenizer.json object for a byte-level BPE vocabulary. */
export function gpt2TokenizerJson(tc: TokenizerConfig, types: Int32Array, parseSpecial: boolean): object {
  const pre = checkGpt2(tc);
  const vocab: Record<string, number> = Object.create(null);
  for (let i = 0; i < tc.tokens.length; i++) if (!(tc.tokens[i] in vocab)) vocab[tc.tokens[i]] = i;
  const merges = tc.merges.map((m, i): [string, string] => {
    const sp = m.indexOf(' ', 1); // byte-level pieces never contain a space (it is spelled Ġ)
    if (sp < 0) throw new GgufError(`tokenizer.ggml.merges[${i}] = '${m}' is not two pieces separated by a space: the file is corrupt; re-convert the model`);
    return [m.slice(0, sp), m.slice(sp + 1)];
  });
  return {
    version: '1.0',
    added_tokens: addedTokens(tc.tokens, types, parseSpecial),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...pre.regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: null, // decoding is byte-exact in index.ts
    model: {
      type: 'BPE', vocab, merges, byte_fallback: false, fuse_unk: false, ignore_merges: pre.ignoreMerges,
      unk_token: tc.unkId !== undefined ? tc.tokens[tc.unkId] : undefined,
    },
  };
}
