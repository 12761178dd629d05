// Text <-> token ids for a GGUF vocabulary. Encoding goes through @huggingface/tokenizers
// with a tokenizer.json built from the GGUF (spm.ts for SentencePiece, bpe.ts for
// byte-level BPE); decoding is our own: every token maps to a byte string, bytes are
// concatenated and UTF-8 decoded, so streaming and whole decodes agree byte for byte.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { TokenizerConfig } from '../config.ts';
import { GgufError, UsageError } from '../errors.ts';
import { checkGpt2, gpt2TokenizerJson } from './bpe.ts';
import { type SpecialTokens, type TokenizerConfigIn, deriveSpecial } from './special.ts';
import { SPM_SPACE, deriveMerges, spmTokenizerJson } from './spm.ts';
import { TokenType, addedTokenIds, byteLevelBytes, byteTokenValue, utf8 } from './vocab.ts';

export type { TokenizerConfigIn, TokenizerExtras } from './special.ts';
export { TokenType } from './vocab.ts';

export interface EncodeOptions {
  /** Prepend BOS. Default: the model's tokenizer.ggml.add_bos_token. */
  addBos?: boolean;
  /** Match special-token text (`<s>`, `<|eot_id|>`) to its id. Default true, as llama.cpp does for prompts. */
  parseSpecial?: boolean;
  /** Append EOS. Default: the model's tokenizer.ggml.add_eos_token (almost always false). */
  addEos?: boolean;
}

export interface DecodeOptions {
  /**
   * Print control and unknown tokens (BOS, EOS, <|im_end|>, ...) as their text, as
   * llama.cpp does with --special. Default false: they print nothing, as llama.cpp
   * prints generated text. User-defined tokens always print; unused ones never do.
   * The ids are unaffected either way.
   */
  special?: boolean;
  /** @deprecated the inverse of `special` (skipSpecial: false = special: true); `special` wins when both are given. */
  skipSpecial?: boolean;
  /**
   * SentencePiece only: drop the one leading space that encoding added (at the start and
   * after a special token). Default true. Pass false when the ids continue a prompt (generation),
   * so every space is kept, as llama.cpp prints it.
   */
  stripLeadingSpace?: boolean;
}

/** Incremental detokenizer: push ids one by one, get back only complete new text. */
export interface StreamDecoder {
  /** Text completed by this token (possibly ''); never a partial UTF-8 character. */
  push(id: number): string;
  /** Whatever is still held back (an incomplete UTF-8 tail, decoded with U+FFFD). */
  flush(): string;
}

type Kind = 'spm' | 'bpe';

/** C isspace() in the C locale: what llama.cpp's lstrip/rstrip attributes strip. */
const ASCII_SPACE = /[ \t\n\v\f\r]/;

export class Tokenizer {
  /** BOS/EOS/UNK: from metadata, else llama.cpp's per-model defaults (SentencePiece 1/2/0, BPE 11/11). */
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** End of turn: from metadata, else the first of <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, ... in the vocabulary. */
  readonly eotId: number | undefined;
  /** End of message (Llama 3.1 tool calls): metadata, else <|eom_id|>. */
  readonly eomId: number | undefined;
  /** Every id that ends generation, as llama.cpp's llama_vocab_is_eog: EOS, EOT, EOM, <|im_end|>, <end_of_turn>, FIM pad/repo/sep, ... */
  readonly eogIds: readonly number[];
  readonly vocabSize: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly kind: Kind;
  /** SentencePiece's leading space (tokenizer.ggml.add_space_prefix; always false for BPE). */
  readonly addSpacePrefix: boolean;
  private readonly tc: TokenizerConfig;
  private readonly types: Int32Array;
  private readonly eog: ReadonlySet<number>;
  private readonly rstrip: ReadonlySet<number>;
  private readonly pieces: (Uint8Array | undefined)[];
  private merges: [string, string][] | undefined;
  private hf: HfTokenizer | undefined; // parseSpecial = true
  private hfPlain: HfTokenizer | undefined; // parseSpecial = false
  private rstripRe: (RegExp | undefined)[] = [undefined, undefined]; // [plain, parseSpecial]
  private rstripTexts: ReadonlySet<string> | undefined;

  private constructor(tc: TokenizerConfigIn, kind: Kind) {
    this.kind = kind;
    this.vocabSize = tc.tokens.length;
    const inRange = (name: string, id: number | undefined) => {
      if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= tc.tokens.length)) {
        throw new GgufError(`tokenizer ${name} id ${id} is outside the vocabulary of ${tc.tokens.length} tokens: the file is corrupt; re-convert the model`);
      }
      return id;
    };
    inRange('BOS', tc.bosId);
    inRange('EOS', tc.eosId);
    inRange('EOT', tc.eotId);
    inRange('EOM', tc.eomId);
    inRange('unknown-token', tc.unkId);
    this.addBos = tc.addBos;
    this.addEos = tc.addEos;
    this.addSpacePrefix = kind === 'spm' && (tc.addSpacePrefix ?? true);
    // Token types are optional in GGUF; without them, BOS/EOS/UNK are still control tokens.
    let fileTypes: Int32Array;
    if (tc.tokenTypes.length === tc.tokens.length) fileTypes = tc.tokenTypes;
    else {
      const t = new Int32Array(tc.tokens.length).fill(TokenType.Normal);
      for (const id of [tc.bosId, tc.eosId, tc.eotId, tc.padId]) if (id !== undefined && id < t.length) t[id] = TokenType.Control;
      if (tc.unkId !== undefined && tc.unkId < t.length) t[tc.unkId] = TokenType.Unknown;
      if (kind === 'spm') for (let i = 0; i < t.length; i++) if (byteTokenValue(tc.tokens[i]) !== undefined) t[i] = TokenType.Byte;
      fileTypes = t;
    }
    const sp: SpecialTokens = deriveSpecial(tc, fileTypes, kind);
    this.types = sp.types;
    this.bosId = sp.bosId;
    this.eosId = sp.eosId;
    this.eotId = sp.eotId;
    this.eomId = sp.eomId;
    this.eogIds = sp.eogIds;
    this.eog = new Set(sp.eogIds);
    this.rstrip = sp.rstripIds;
    this.tc = { ...tc, bosId: sp.bosId, eosId: sp.eosId, unkId: sp.unkId };
    this.pieces = new Array(tc.tokens.length);
  }

  /**
   * Throws GgufError for a tokenizer model qllm does not implement. `tc` may carry the
   * optional TokenizerExtras fields (EOM/FIM ids, model name, add_space_prefix).
   */
  static fromConfig(tc: TokenizerConfigIn): Tokenizer {
    if (tc.tokens.length === 0) throw new GgufError('tokenizer.ggml.tokens is empty: the model has no vocabulary; re-convert the model');
    if (tc.model === 'llama') return new Tokenizer(tc, 'spm');
    if (tc.model === 'gpt2') {
      checkGpt2(tc);
      return new Tokenizer(tc, 'bpe');
    }
    throw new GgufError(`tokenizer.ggml.model = '${tc.model}' is not supported (qllm reads 'llama' SentencePiece and 'gpt2' byte-level BPE vocabularies): use a model with one of those`);
  }

  private hfFor(parseSpecial: boolean): HfTokenizer {
    const cached = parseSpecial ? this.hf : this.hfPlain;
    if (cached) return cached;
    let json: object;
    if (this.kind === 'spm') {
      this.merges ??= deriveMerges(this.tc.tokens, this.tc.scores, this.types);
      json = spmTokenizerJson(this.tc, this.types, this.merges, parseSpecial, this.addSpacePrefix);
    } else {
      json = gpt2TokenizerJson(this.tc, this.types, parseSpecial);
    }
    // clean_up_tokenization_spaces only affects HF decode, which we do not use.
    const tok = new HfTokenizer(json, { clean_up_tokenization_spaces: false });
    if (parseSpecial) this.hf = tok;
    else this.hfPlain = tok;
    return tok;
  }

  /** Builds the encoder now (it is otherwise built on the first encode). */
  warm(): this {
    this.hfFor(true);
    return this;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new UsageError(`cannot tokenize a ${typeof text}: pass a string`);
    const addBos = opts.addBos ?? this.addBos;
    const ids: number[] = [];
    if (addBos) {
      if (this.bosId === undefined) throw new UsageError('this model has no BOS token (tokenizer.ggml.bos_token_id is missing): encode with addBos: false');
      ids.push(this.bosId);
    }
    if (text.length > 0) {
      const parseSpecial = opts.parseSpecial ?? true;
      if (this.rstrip.size > 0) text = this.applyRstrip(text, parseSpecial);
      const enc = this.hfFor(parseSpecial).encode(text, { add_special_tokens: false });
      for (const id of enc.ids) ids.push(id);
    }
    if (opts.addEos ?? this.addEos) {
      if (this.eosId === undefined) throw new UsageError('this model has no EOS token (tokenizer.ggml.eos_token_id is missing): encode with addEos: false');
      ids.push(this.eosId);
    }
    return ids;
  }

  /**
   * llama.cpp's RSTRIP attribute (Phi-3): a matched special token swallows the ASCII
   * whitespace after it (C isspace, not JS's wider \s, hence not the tokenizer.json
   * rstrip flag). All tokens matched as special are in the alternation, longest first,
   * so a token is only stripped after where the tokenizer will also match it.
   */
  private applyRstrip(text: string, parseSpecial: boolean): string {
    const k = parseSpecial ? 1 : 0;
    let re = this.rstripRe[k];
    if (!re) {
      const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const alts = addedTokenIds(this.types, parseSpecial)
        .sort((a, b) => this.tc.tokens[b].length - this.tc.tokens[a].length)
        .map((id) => (this.rstrip.has(id) ? `${esc(this.tc.tokens[id])}(?:${ASCII_SPACE.source})*` : esc(this.tc.tokens[id])));
      re = new RegExp(alts.join('|'), 'gu');
      this.rstripRe[k] = re;
    }
    this.rstripTexts ??= new Set([...this.rstrip].map((id) => this.tc.tokens[id]));
    const rstripTexts = this.rstripTexts;
    return text.replace(re, (m) => {
      // m is a token's text, or an rstrip token's text plus the whitespace it swallows.
      let r = m;
      while (!rstripTexts.has(r) && r.length > 0 && ASCII_SPACE.test(r[r.length - 1])) r = r.slice(0, -1);
      return rstripTexts.has(r) ? r : m;
    });
  }

  /** True for end-of-generation tokens (eogIds): generation stops on any of them. */
  isEog(id: number): boolean {
    return this.eog.has(id);
  }

  /** The vocabulary string of a token, as stored (▁ / Ġ spellings included). */
  tokenText(id: number): string {
    this.check(id);
    return this.tc.tokens[id];
  }

  tokenType(id: number): TokenType {
    this.check(id);
    return this.types[id];
  }

  /** Control, unknown and unused tokens (after llama.cpp's overrides): their text is not model output. */
  isSpecial(id: number): boolean {
    const t = this.tokenType(id);
    return t === TokenType.Control || t === TokenType.Unknown || t === TokenType.Unused;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const s = this.streamDecoder(opts);
    let out = '';
    for (const id of ids) out += s.push(id);
    return out + s.flush();
  }

  streamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    const special = opts.special ?? (opts.skipSpecial === undefined ? false : !opts.skipSpecial);
    // SentencePiece adds a ▁ at the start and after each special token; strip it back off
    // there, unless the ids continue a prompt (then llama.cpp prints every space).
    let strip = this.addSpacePrefix && (opts.stripLeadingSpace ?? true);
    const stripAfterSpecial = strip;
    let pending = new Uint8Array(0);
    // ignoreBOM: a generated U+FEFF is text like any other, not a byte-order mark to drop.
    const td = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number): string => {
        const t = this.tokenType(id);
        // What llama.cpp's token_to_piece prints: unused and undefined-type tokens nothing,
        // control and unknown ones their text only when asked for special output.
        if (t === TokenType.Unused || t === TokenType.Undefined) return '';
        if (t === TokenType.Control || t === TokenType.Unknown || t === TokenType.UserDefined) {
          if (stripAfterSpecial) strip = true;
          if (!special && t !== TokenType.UserDefined) return '';
        } else if (strip && t === TokenType.Normal) {
          strip = false;
          const p = this.piece(id);
          if (p.length > 0 && p[0] === 0x20) return emit(p.subarray(1));
          return emit(p);
        }
        return emit(this.piece(id));
      },
      flush: (): string => {
        const s = pending.length ? td.decode(pending) : '';
        pending = new Uint8Array(0);
        return s;
      },
    };

    function emit(bytes: Uint8Array): string {
      if (bytes.length === 0) return '';
      let buf: Uint8Array;
      if (pending.length === 0) buf = bytes;
      else {
        buf = new Uint8Array(pending.length + bytes.length);
        buf.set(pending);
        buf.set(bytes, pending.length);
      }
      const cut = completePrefix(buf);
      pending = buf.slice(cut);
      return cut > 0 ? td.decode(buf.subarray(0, cut)) : '';
    }
  }

  /** The bytes a token stands for (special tokens: their text). Cached. */
  private piece(id: number): Uint8Array {
    const cached = this.pieces[id];
    if (cached) return cached;
    const text = this.tc.tokens[id];
    const t = this.types[id];
    let p: Uint8Array;
    if (t === TokenType.Byte) {
      const b = byteTokenValue(text);
      p = b === undefined ? utf8(text) : Uint8Array.of(b);
    } else if (t !== TokenType.Normal) {
      p = utf8(text); // control / user-defined / unknown: raw text, as llama.cpp prints it
    } else if (this.kind === 'spm') {
      p = utf8(text.replaceAll(SPM_SPACE, ' '));
    } else {
      p = byteLevelBytes(text);
    }
    this.pieces[id] = p;
    return p;
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new UsageError(`token id ${id} is outside the vocabulary 0..${this.vocabSize - 1}: pass ids produced by this model's tokenizer`);
    }
  }
}

/**
 * Length of the longest prefix of `b` that does not end inside a UTF-8 character that
 * could still be completed by more bytes. Invalid bytes are not held back (they decode
 * to U+FFFD either way), only a genuine incomplete tail of up to 3 bytes.
 */
export function completePrefix(b: Uint8Array): number {
  const n = b.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const x = b[n - back];
    if ((x & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = x >= 0xf5 ? 1 : x >= 0xf0 ? 4 : x >= 0xe0 ? 3 : x >= 0xc2 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
