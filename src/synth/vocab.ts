// A small synthetic SentencePiece-style vocabulary (tokenizer.ggml.model = llama):
//   0 <unk> (type 2), 1 <s>, 2 </s> (type 3), 3..258 <0x00>..<0xFF> (type 6),
//   then normal tokens (type 1) with descending scores: "▁", single characters,
//   common words and every prefix of them, then letter bigrams/trigrams, with and
//   without "▁". Every multi-character normal token is the concatenation of two
//   earlier tokens, so an SPM→BPE conversion can derive it as a merge.
import { UsageError } from '../errors.ts';
import type { GgufKV } from '../gguf/types.ts';
import { kv } from '../gguf/writer.ts';

const SP = '\u2581';
const WORDS = `the and was to a he she it of in that his her they with on for is you said one day
Once upon time there little girl boy big cat dog play happy very saw mom had went wanted friend fun named
Lily Tim Tom Sue ball tree park sun red blue good at be not but so can all what`.split(/\s+/);

export const MIN_VOCAB = 3 + 256 + 1;

/** Normal tokens in score order, each (if longer than one char) splittable into two earlier ones. */
function normalTokens(n: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    if (out.length < n && !seen.has(t)) { seen.add(t); out.push(t); }
  };
  add(SP);
  const lower = 'etaoinshrdlcumwfgypbvkjxqz';
  const chars = `${lower}${lower.toUpperCase()}0123456789.,!?'"-:;()`;
  for (const c of chars) add(c);
  for (const c of lower) add(SP + c);
  for (const w of WORDS) {
    // "▁the" needs "▁th" (+ "e"), which needs "▁t" (+ "h").
    const full = SP + w;
    for (let k = 2; k <= full.length; k++) add(full.slice(0, k));
  }
  // Fill with systematic n-grams: each level extends the previous one by one letter.
  let level = [...lower];
  while (out.length < n) {
    for (const p of level) for (const c of lower) add(p + c);
    for (const p of level) for (const c of lower) add(SP + p + c); // = ("▁" + p) + c at the previous level
    const next: string[] = [];
    for (const p of level) for (const c of lower) next.push(p + c);
    level = next;
  }
  return out;
}

/** tokenizer.* metadata of a synthetic vocabulary of `size` tokens. */
export function syntheticVocab(size: number): GgufKV[] {
  if (!Number.isInteger(size) || size < MIN_VOCAB) throw new UsageError(`vocabulary size ${size} is too small: a synthetic SentencePiece vocabulary needs at least ${MIN_VOCAB} tokens (3 special + 256 bytes + 1)`);
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  const normal = normalTokens(size - tokens.length);
  const scores = new Float32Array(size);
  normal.forEach((t, i) => { tokens.push(t); types.push(1); scores[259 + i] = -i; });
  return [
    kv.str('tokenizer.ggml.model', 'llama'),
    kv.strArray('tokenizer.ggml.tokens', tokens),
    kv.f32Array('tokenizer.ggml.scores', scores),
    kv.i32Array('tokenizer.ggml.token_type', types),
    kv.u32('tokenizer.ggml.bos_token_id', 1),
    kv.u32('tokenizer.ggml.eos_token_id', 2),
    kv.u32('tokenizer.ggml.unknown_token_id', 0),
    kv.bool('tokenizer.ggml.add_bos_token', true),
    kv.bool('tokenizer.ggml.add_eos_token', false),
  ];
}
