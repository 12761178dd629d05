// SentencePiece (`tokenizer.ggml.model = llama`) vocabulary -> tokenizer.json for
// @huggingface/tokenizers. The route is the one checked in ../shared/notes/tokenizer.md:
// a BPE model with byte fallback whose merges are derived from the vocabulary and
// ranked by the merged token's score (what SentencePiece's BPE does: repeatedly merge
// the adjacent pair whose concatenation is the highest-scoring vocabulary piece).
import type { TokenizerConfig } from '../config.ts';
import { GgufError } from '../errors.ts';
import { TokenType, addedTokenIds } from './vocab.ts';

export const SPM_SPACE = '\u2581'; // ▁, SentencePiece's visible space

/**
 * Merges [left, right] for every normal token that splits into two vocabulary pieces,
 * ranked by the merged token's score (highest first), ties by merged id, then by the
 * left piece's id. ~61k merges for the 32k Llama vocabulary, built in tens of ms.
 */
export function deriveMerges(tokens: readonly string[], scores: Float32Array, types: Int32Array): [string, string][] {
  const ids = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) if (!ids.has(tokens[i])) ids.set(tokens[i], i);
  // Flat records: (merged id, left id, right id) so the sort compares numbers only.
  const merged: number[] = [];
  const lefts: number[] = [];
  const rights: number[] = [];
  for (let id = 0; id < tokens.length; id++) {
    if (types.length > 0 && types[id] !== TokenType.Normal) continue;
    const t = tokens[id];
    for (let k = 1; k < t.length; k++) {
      const l = ids.get(t.slice(0, k));
      if (l === undefined) continue;
      const r = ids.get(t.slice(k));
      if (r === undefined) continue;
      merged.push(id);
      lefts.push(l);
      rights.push(r);
    }
  }
  const order = Array.from(merged.keys());
  order.sort((a, b) => {
    const ma = merged[a];
    const mb = merged[b];
    if (ma !== mb) {
      const d = scores[mb] - scores[ma];
      return d !== 0 ? d : ma - mb;
    }
    return lefts[a] - lefts[b];
  });
  return order.map((i) => [tokens[lefts[i]], tokens[rights[i]]]);
}

/** The tokenizer.json object for a SentencePiece vocabulary (merges passed in, built once). */
export function spmTokenizerJson(tc: TokenizerConfig, types: Int32Array, merges: [string, string][], parseSpecial: boolean): object {
  if (tc.scores.length !== tc.tokens.length) {
    throw new GgufError(`tokenizer.ggml.scores has ${tc.scores.length} entries for ${tc.tokens.length} tokens: a SentencePiece vocabulary needs one score per token; re-convert the model`);
  }
  const vocab: Record<string, number> = Object.create(null);
  for (let i = 0; i < tc.tokens.length; i++) if (!(tc.tokens[i] in vocab)) vocab[tc.tokens[i]] = i;
  const unk = tc.unkId !== undefined ? tc.tokens[tc.unkId] : undefined;
  return {
    version: '1.0',
    added_tokens: addedTokenIds(types, parseSpecial).map((id) => ({
      id, content: tc.tokens[id], special: true, normalized: false, lstrip: false, rstrip: false, single_word: false,
    })),
    // Prepend ▁ then turn every space into ▁ (SentencePiece's add_dummy_prefix + escaping).
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPM_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    // Decoding is done by our own byte-exact decoder (index.ts); this is never used.
    decoder: null,
    model: { type: 'BPE', vocab, merges, unk_token: unk, byte_fallback: true, fuse_unk: true, ignore_merges: false },
  };
}
