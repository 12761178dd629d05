// What llama.cpp's vocabulary loader (llama_vocab::impl::load, src/llama-vocab.cpp)
// derives beyond the file's own token types: default special ids, EOT/EOM/FIM tokens
// found by their text, the end-of-generation (EOG) set, and the type overrides that go
// with them. Generation stops on every EOG id and decoding hides control tokens, so
// both must come out exactly as llama.cpp's do.
import type { TokenizerConfig } from '../config.ts';
import { TokenType } from './vocab.ts';

/**
 * Metadata llama.cpp's vocabulary also reads: ids (tokenizer.ggml.eom_token_id,
 * tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id), the model name it keys
 * attributes on (general.name) and tokenizer.ggml.add_space_prefix. Config may not carry
 * them; an absent id is then found by its text, as llama.cpp does when the key is absent.
 */
export interface TokenizerExtras {
  readonly eomId: number | undefined;
  readonly fimPreId: number | undefined;
  readonly fimSufId: number | undefined;
  readonly fimMidId: number | undefined;
  readonly fimPadId: number | undefined;
  readonly fimRepId: number | undefined;
  readonly fimSepId: number | undefined;
  /** general.name: llama.cpp sets rstrip on Phi-3's special tokens by it. */
  readonly modelName: string | undefined;
  /** SentencePiece: prepend a space to the text (and after each special token). Default true; Gemma's files say false. */
  readonly addSpacePrefix: boolean | undefined;
}

export type TokenizerConfigIn = TokenizerConfig & Partial<TokenizerExtras>;

export interface SpecialTokens {
  /** Token types after llama.cpp's overrides (text-detected EOG/FIM tokens become control). */
  readonly types: Int32Array;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly eotId: number | undefined;
  readonly eomId: number | undefined;
  /** Every id that ends generation (llama_vocab_is_eog), ascending. */
  readonly eogIds: readonly number[];
  /** Ids whose whitespace to the right is dropped when encoding (llama.cpp's RSTRIP attribute). */
  readonly rstripIds: ReadonlySet<number>;
}

// The token texts llama.cpp looks for, in its order. When a model has several (Qwen's
// <|im_end|> and <|endoftext|>), llama.cpp takes whichever its hash map visits first;
// qllm takes the first in this order. Only eotId depends on that choice, not the EOG set.
const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const EOM_TEXTS = ['<|eom_id|>'];
const FIM_PRE_TEXTS = ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'];
const FIM_SUF_TEXTS = ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'];
const FIM_MID_TEXTS = ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'];
const FIM_PAD_TEXTS = ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'];
const FIM_REP_TEXTS = ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'];
const FIM_SEP_TEXTS = ['<|file_sep|>'];
/** Texts that end generation whatever the metadata says. */
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>', '</s>',
  '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>', '<|tool_response>',
  '<｜end▁of▁sentence｜>', '[e~[',
];
/** gpt-oss: always rendered (user-defined), whatever the file says. */
const ALWAYS_RENDERED = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'];

/**
 * llama.cpp's load-time derivation, step by step in its order. `types` are the file's
 * token types (or the fallback built when the file has none); the result is a copy.
 */
export function deriveSpecial(tc: TokenizerConfigIn, fileTypes: Int32Array, kind: 'spm' | 'bpe'): SpecialTokens {
  const n = tc.tokens.length;
  const types = Int32Array.from(fileTypes);
  const inVocab = (id: number | undefined) => (id !== undefined && id >= 0 && id < n ? id : undefined);
  // Absent keys fall back to llama.cpp's per-model defaults (SentencePiece: Llama's ids;
  // byte-level BPE: Falcon's <|endoftext|> = 11), dropped when outside the vocabulary.
  // (GLM-4's pre-tokenizer drops the BOS default.)
  const noBos = kind === 'bpe' && (tc.pre === 'glm4' || tc.pre === 'chatglm-bpe');
  const dflt = kind === 'spm' ? { bos: 1, eos: 2, unk: 0 } : { bos: noBos ? undefined : 11, eos: 11, unk: undefined };
  const bosId = tc.bosId ?? inVocab(dflt.bos);
  const eosId = tc.eosId ?? inVocab(dflt.eos);
  const unkId = tc.unkId ?? inVocab(dflt.unk);

  const ids = new Map<string, number>(); // llama.cpp's token_to_id: the last id of a repeated text wins
  for (let i = 0; i < n; i++) ids.set(tc.tokens[i], i);
  const makeControl = (id: number) => {
    // A detected special token that the file left as normal/user-defined: llama.cpp ORs
    // in the control attribute, which then governs printing and special-token parsing.
    if (types[id] !== TokenType.Control) types[id] = TokenType.Control;
  };
  const detect = (given: number | undefined, texts: string[]): number | undefined => {
    // A metadata id wins; one outside the vocabulary is ignored, as llama.cpp does.
    if (inVocab(given) !== undefined) return given;
    for (const t of texts) {
      const id = ids.get(t);
      if (id !== undefined) {
        makeControl(id);
        return id;
      }
    }
    return undefined;
  };
  const eotId = detect(tc.eotId, EOT_TEXTS);
  const eomId = detect(tc.eomId, EOM_TEXTS);
  detect(tc.fimPreId, FIM_PRE_TEXTS);
  detect(tc.fimSufId, FIM_SUF_TEXTS);
  detect(tc.fimMidId, FIM_MID_TEXTS);
  const fimPad = detect(tc.fimPadId, FIM_PAD_TEXTS);
  const fimRep = detect(tc.fimRepId, FIM_REP_TEXTS);
  const fimSep = detect(tc.fimSepId, FIM_SEP_TEXTS);
  // (llama.cpp also flags control tokens whose text contains "unused" as unused; they stay
  // control, which is all that printing and parsing look at, so types need no change.)

  const eog = new Set<number>();
  for (const id of [fimPad, fimRep, fimSep]) if (id !== undefined) eog.add(id);
  for (const t of EOG_TEXTS) {
    const id = ids.get(t);
    if (id === undefined) continue;
    eog.add(id);
    makeControl(id);
  }
  for (const t of ALWAYS_RENDERED) {
    const id = ids.get(t);
    if (id !== undefined) types[id] = TokenType.UserDefined;
  }
  for (const id of [eosId, eotId, eomId]) if (id !== undefined) eog.add(id);

  const eogText = (t: string) => {
    const id = ids.get(t);
    return id !== undefined && eog.has(id) ? id : undefined;
  };
  // gpt-oss (o200k_harmony) and solar-open: <|end|> closes a message, not the generation.
  const end = eogText('<|end|>');
  const hasCall = eogText('<|call|>') !== undefined || eogText('<|calls|>') !== undefined;
  if (end !== undefined && hasCall && (eogText('<|return|>') !== undefined || eogText('<|flush|>') !== undefined)) {
    eog.delete(end);
    types[end] = TokenType.UserDefined;
  }
  // Gemma 4 and PaddleOCR: </s> is ordinary text there.
  const s = eogText('</s>');
  if (s !== undefined && eogText('<|tool_response>') !== undefined) {
    eog.delete(s);
    types[s] = TokenType.Normal;
  }

  // Per-model attributes: Phi-3's special tokens swallow the whitespace after them
  // (its tokenizer.json marks them rstrip), except <unk>, <s> and <|endoftext|>.
  const rstripIds = new Set<number>();
  const name = (tc.modelName ?? '').toLowerCase();
  if (name.includes('phi-3') || name.includes('phi3')) {
    for (let id = 0; id < n; id++) {
      const t = types[id];
      if (t === TokenType.Control || t === TokenType.UserDefined || t === TokenType.Unknown) rstripIds.add(id);
    }
    const slash = ids.get('</s>');
    if (slash !== undefined) rstripIds.add(slash);
    for (const t of ['<unk>', '<s>', '<|endoftext|>']) {
      const id = ids.get(t);
      if (id !== undefined) rstripIds.delete(id);
    }
  }

  return { types, bosId, eosId, unkId, eotId, eomId, eogIds: [...eog].sort((a, b) => a - b), rstripIds };
}
