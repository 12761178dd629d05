// Text <-> token ids for a GGUF vocabulary. Encoding goes through @huggingface/tokenizers
// with a tokenizer.json built from the GGUF (spm.ts for SentencePiece, bpe.ts for
// byte-level BPE); decoding is our own: every token maps to a byte string, bytes are
// concatenated and UTF-8 decoded, so streaming and whole decodes agree byte for byte.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { TokenizerConfig } from '../config.ts';
import { GgufError, UsageError } from '../errors.ts';
import { checkGpt2, gpt2TokenizerJson } from './bpe.ts';
import { SPM_SPACE, deriveMerges, spmTokenizerJson } from './spm.ts';
import { TokenType, byteLevelBytes, byteTokenValue, utf8 } from './vocab.ts';

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
  /** Drop control/unknown/unused tokens (BOS, EOS, ...) instead of printing their text. Default false. */
  skipSpecial?: boolean;
  /**
   * SentencePiece only: drop the one leading space that encoding added (at the start and
   * after a special token). Default true. Pass false when the ids continue a prompt (generation),
   * so the first word keeps its space, as llama.cpp prints it.
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

export class Tokenizer {
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly eotId: number | undefined;
  readonly vocabSize: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly kind: Kind;
  private readonly tc: TokenizerConfig;
  private readonly types: Int32Array;
  private readonly pieces: (Uint8Array | undefined)[];
  private merges: [string, string][] | undefined;
  private hf: HfTokenizer | undefined; // parseSpecial = true
  private hfPlain: HfTokenizer | undefined; // parseSpecial = false

  private constructor(tc: TokenizerConfig, kind: Kind) {
    this.tc = tc;
    this.kind = kind;
    this.vocabSize = tc.tokens.length;
    const inRange = (name: string, id: number | undefined) => {
      if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= tc.tokens.length)) {
        throw new GgufError(`tokenizer ${name} id ${id} is outside the vocabulary of ${tc.tokens.length} tokens: the file is corrupt; re-convert the model`);
      }
      return id;
    };
    this.bosId = inRange('BOS', tc.bosId);
    this.eosId = inRange('EOS', tc.eosId);
    this.eotId = inRange('EOT', tc.eotId);
    inRange('unknown-token', tc.unkId);
    this.addBos = tc.addBos;
    this.addEos = tc.addEos;
    // Token types are optional in GGUF; without them, BOS/EOS/UNK are still control tokens.
    if (tc.tokenTypes.length === tc.tokens.length) this.types = tc.tokenTypes;
    else {
      const t = new Int32Array(tc.tokens.length).fill(TokenType.Normal);
      for (const id of [tc.bosId, tc.eosId, tc.eotId, tc.padId]) if (id !== undefined && id < t.length) t[id] = TokenType.Control;
      if (tc.unkId !== undefined && tc.unkId < t.length) t[tc.unkId] = TokenType.Unknown;
      if (kind === 'spm') for (let i = 0; i < t.length; i++) if (byteTokenValue(tc.tokens[i]) !== undefined) t[i] = TokenType.Byte;
      this.types = t;
    }
    this.pieces = new Array(tc.tokens.length);
  }

  /** Throws GgufError for a tokenizer model qllm does not implement. */
  static fromConfig(tc: TokenizerConfig): Tokenizer {
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
      json = spmTokenizerJson(this.tc, this.types, this.merges, parseSpecial);
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
      const enc = this.hfFor(opts.parseSpecial ?? true).encode(text, { add_special_tokens: false });
      for (const id of enc.ids) ids.push(id);
    }
    if (opts.addEos ?? this.addEos) {
      if (this.eosId === undefined) throw new UsageError('this model has no EOS token (tokenizer.ggml.eos_token_id is missing): encode with addEos: false');
      ids.push(this.eosId);
    }
    return ids;
  }

  /** True for end-of-generation tokens: EOS and EOT. */
  isEog(id: number): boolean {
    return id === this.eosId || id === this.eotId;
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

  /** Control, unknown and unused tokens: their text is not model output. */
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
    const skipSpecial = opts.skipSpecial ?? false;
    // SentencePiece adds a ▁ at the start and after each special token; strip it back off there.
    let strip = this.kind === 'spm' && (opts.stripLeadingSpace ?? true);
    const stripAfterSpecial = this.kind === 'spm';
    let pending = new Uint8Array(0);
    const td = new TextDecoder('utf-8');
    return {
      push: (id: number): string => {
        const t = this.tokenType(id);
        if (t === TokenType.Control || t === TokenType.Unknown || t === TokenType.Unused || t === TokenType.UserDefined) {
          if (stripAfterSpecial && t !== TokenType.Unused) strip = true;
          if (skipSpecial && t !== TokenType.UserDefined) return '';
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
