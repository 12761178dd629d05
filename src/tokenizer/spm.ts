// SentencePiece (`tokenizer.ggml.model = llama`) vocabulary -> tokenizer.json for
// @huggingface/tokenizers. The route is the one checked in ../shared/notes/tokenizer.md:
// a BPE model with byte fallback whose merges are derived from the vocabulary and
// ranked by the merged token's score (what SentencePiece's BPE does: repeatedly merge
// the adjacent pair whose concatenation is the highest-scoring vocabulary piece).
import type { TokenizerConfig } from '../config.ts';
import { GgufError } from '../errors.ts';
import { TokenType, addedTokens } from './vocab.ts';

export const SPM_SPACE = '\u2581'; // ▁, SentencePiece's visible space

/**
 * Merges [left, right] for every normal token that splits into two vocabulary pieces,
 * ranked by the merged token's score (highest first), ties by merged id, then by the
 * left piece's id. ~61k merges for the 32k Llama vocabulary, built in tens of ms.
 */
export function deriveMerges(tokens: readonly string[], scores: Float32Array, types: Int32Array): [string, string][] {
  const ids = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) if (!ids.has(tokens[i])) ids.set(tokens[i], i);
  // Order the mergeable tokens by (score desc, id asc) with one native numeric sort over
  // packed keys: order-preserving float bits (32) * 2^21 + id (ids < 2M), exact in a double.
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const keys: number[] = [];
  for (let id = 0; id < tokens.length; id++) {
    if ((types.length > 0 && types[id] !== TokenType.Normal) || tokens[id].length < 2) continue;
    f[0] = scores[id];
    const b = u[0];
    const ordered = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0; // larger score -> larger
    keys.push((0xffffffff - ordered) * 2 ** 21 + id);
  }
  const sorted = Float64Array.from(keys).sort();
  const out: [string, string][] = [];
  const splits: [number, string, string][] = [];
  for (const key of sorted) {
    const id = key % 2 ** 21;
    const t = tokens[id];
    splits.length = 0;
    for (let k = 1; k < t.length; k++) {
      const left = t.slice(0, k);
      const l = ids.get(left);
      if (l === undefined) continue;
      const right = t.slice(k);
      if (ids.has(right)) splits.push([l, left, right]);
    }
    if (splits.length > 1) splits.sort((a, b) => a[0] - b[0]); // ties within one token: by left id
    for (const [, left, right] of splits) out.push([left, right]);
  }
  return out;
}

/**
 * SentencePiece runs BPE over the whole text at once, which is slow on long prompts.
 * If no mergeable token contains a ▁ right after another char (true of Llama's vocabularies:
 * ▁ only leads a piece), no merge can cross the start of a "▁*word" run, so BPE per run is
 * exactly BPE over the whole text, and short runs hit the per-word cache.
 */
export function wordSplitIsExact(tokens: readonly string[], types: Int32Array): boolean {
  const inner = new RegExp(`[^${SPM_SPACE}]${SPM_SPACE}`);
  for (let i = 0; i < tokens.length; i++) {
    if ((types.length === 0 || types[i] === TokenType.Normal) && inner.test(tokens[i])) return false;
  }
  return true;
}

/** The tokenizer.json object for a SentencePiece vocabulary (merges passed in, built once). */
export function spmTokenizerJson(tc: TokenizerConfig, types: Int32Array, merges: [string, string][], parseSpecial: boolean, addSpacePrefix = true): object {
  if (tc.scores.length !== tc.tokens.length) {
    throw new GgufError(`tokenizer.ggml.scores has ${tc.scores.length} entries for ${tc.tokens.length} tokens: a SentencePiece vocabulary needs one score per token; re-convert the model`);
  }
  const vocab: Record<string, number> = Object.create(null);
  for (let i = 0; i < tc.tokens.length; i++) if (!(tc.tokens[i] in vocab)) vocab[tc.tokens[i]] = i;
  const unk = tc.unkId !== undefined ? tc.tokens[tc.unkId] : undefined;
  return {
    version: '1.0',
    added_tokens: addedTokens(tc.tokens, types, parseSpecial),
    // Prepend ▁ (SentencePiece's add_dummy_prefix: llama.cpp's add_space_prefix, applied to
    // each stretch of text between special tokens) then turn every space into ▁.
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(addSpacePrefix ? [{ type: 'Prepend', prepend: SPM_SPACE }] : []),
        { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE },
      ],
    },
    pre_tokenizer: wordSplitIsExact(tc.tokens, types)
      ? { type: 'Split', pattern: { Regex: `${SPM_SPACE}*[^${SPM_SPACE}]+|${SPM_SPACE}+` }, behavior: 'Isolated', invert: true }
      : null,
    post_processor: null,
    // Decoding is done by our own byte-exact decoder (index.ts); this is never used.
    decoder: null,
    model: { type: 'BPE', vocab, merges, unk_token: unk, byte_fallback: true, fuse_unk: true, ignore_merges: false },
  };
}
