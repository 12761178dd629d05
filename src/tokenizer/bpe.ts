// Byte-level BPE (`tokenizer.ggml.model = gpt2`: GPT-2, Llama 3, Qwen) -> tokenizer.json
// for @huggingface/tokenizers. The GGUF carries the real merges; what it does not carry
// is the pre-tokenizer regex, which llama.cpp selects by the name in tokenizer.ggml.pre.
// The table below maps those names to the regexes (as in the models' tokenizer.json,
// which @huggingface/tokenizers translates from Oniguruma syntax itself).
import type { TokenizerConfig } from '../config.ts';
import { GgufError } from '../errors.ts';
import { addedTokenIds } from './vocab.ts';

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface PreSpec { regexes: string[]; ignoreMerges: boolean }

/** tokenizer.ggml.pre name -> regexes applied in turn (each splits the previous pieces, keeping matches). */
const PRE: Record<string, PreSpec> = {};
const def = (names: string[], regexes: string[], ignoreMerges = false) => { for (const n of names) PRE[n] = { regexes, ignoreMerges }; };
def(['default', 'gpt2', 'mpt', 'olmo', 'jais', 'trillion'], [GPT2]);
def(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'dbrx', 'smaug-bpe', 'chatglm-bpe'], [LLAMA3], true);
def(['qwen2', 'stablelm2', 'deepseek-r1-qwen', 'hunyuan', 'megrez'], [QWEN2]);
def(['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva'], ['\\p{N}', GPT2]);

export const supportedPre = () => Object.keys(PRE).sort();

/** Throws GgufError for an unknown `pre` or missing merges (cheap; called at load). */
export function checkGpt2(tc: TokenizerConfig): PreSpec {
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
    added_tokens: addedTokenIds(types, parseSpecial).map((id) => ({
      id, content: tc.tokens[id], special: true, normalized: false, lstrip: false, rstrip: false, single_word: false,
    })),
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
