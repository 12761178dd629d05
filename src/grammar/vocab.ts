// Each token's exact output bytes and a byte trie over them, built once per
// tokenizer (cached): what a grammar matches a token against.
//
// Bytes are what the stream decoder prints in generation (stripLeadingSpace:
// false): SentencePiece '▁' is a space, <0xAB> one raw byte, byte-level BPE
// chars map back through GPT-2's table, user-defined tokens are their text.
// Control, unknown, unused and end-of-generation tokens print nothing, so they
// match no characters (a grammar reaches them only through <[id]> / <text>).
//
// Trie shape (DFS preorder, node 0 = the root): node n's subtree is the index
// range [n, end[n]); its first child is n + 1 and the next sibling of a child c is
// end[c]. byte[n] is the byte leading into n; tokens whose bytes end exactly at n
// are toks[tokStart[n] .. tokStart[n + 1]).
import { UsageError } from '../errors.ts';
import { SPM_SPACE } from '../tokenizer/spm.ts';
import { byteLevelBytes, byteTokenValue, TokenType, utf8 } from '../tokenizer/vocab.ts';

/** What a grammar needs of a tokenizer: qllm's Tokenizer, or anything giving bytes per id. */
export interface VocabSource {
  readonly vocabSize: number;
  isEog(id: number): boolean;
  /** The exact bytes a token prints; undefined or empty = prints nothing. Takes precedence over the fields below. */
  tokenBytes?(id: number): Uint8Array | undefined;
  tokenText?(id: number): string;
  tokenType?(id: number): number;
  readonly kind?: 'spm' | 'bpe';
}

export class TokenVocab {
  readonly size: number;
  readonly bytes: (Uint8Array | undefined)[];
  readonly eog: Uint8Array;
  readonly trieByte: Uint8Array;
  readonly trieEnd: Int32Array;
  readonly tokStart: Int32Array;
  readonly toks: Int32Array;
  private byText: Map<string, number> | undefined;

  constructor(private readonly src: VocabSource) {
    const n = src.vocabSize;
    this.size = n;
    this.bytes = new Array(n);
    this.eog = new Uint8Array(n);
    const entries: [string, number][] = [];
    for (let id = 0; id < n; id++) {
      if (src.isEog(id)) {
        this.eog[id] = 1;
        continue;
      }
      const b = tokenBytesOf(src, id);
      if (!b || b.length === 0) continue;
      this.bytes[id] = b;
      let key = '';
      for (let i = 0; i < b.length; i++) key += String.fromCharCode(b[i]);
      entries.push([key, id]);
    }
    // Latin-1 keys sort by UTF-16 unit = by byte: sorted byte strings build a preorder trie.
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    const byte: number[] = [0];
    const end: number[] = [0];
    const nodeOf = new Int32Array(entries.length);
    const path = [0];
    let prev = '';
    entries.forEach(([key, _id], k) => {
      let lcp = 0;
      const max = Math.min(prev.length, key.length);
      while (lcp < max && prev.charCodeAt(lcp) === key.charCodeAt(lcp)) lcp++;
      while (path.length - 1 > lcp) end[path.pop()!] = byte.length;
      for (let i = lcp; i < key.length; i++) {
        path.push(byte.length);
        byte.push(key.charCodeAt(i));
        end.push(0);
      }
      nodeOf[k] = path[key.length];
      prev = key;
    });
    while (path.length > 0) end[path.pop()!] = byte.length;
    const nodes = byte.length;
    this.trieByte = Uint8Array.from(byte);
    this.trieEnd = Int32Array.from(end);
    this.tokStart = new Int32Array(nodes + 1);
    for (let k = 0; k < entries.length; k++) this.tokStart[nodeOf[k] + 1]++;
    for (let i = 0; i < nodes; i++) this.tokStart[i + 1] += this.tokStart[i];
    this.toks = new Int32Array(entries.length);
    const fill = this.tokStart.slice(0, nodes);
    for (let k = 0; k < entries.length; k++) this.toks[fill[nodeOf[k]]++] = entries[k][1];
  }

  /** The id whose vocabulary text is exactly `text` (for <text> tokens in a grammar). */
  idOfText(text: string): number | undefined {
    if (!this.src.tokenText) return undefined;
    if (!this.byText) {
      this.byText = new Map();
      for (let id = this.size - 1; id >= 0; id--) this.byText.set(this.src.tokenText(id), id);
    }
    return this.byText.get(text);
  }
}

function tokenBytesOf(src: VocabSource, id: number): Uint8Array | undefined {
  if (src.tokenBytes) return src.tokenBytes(id);
  if (!src.tokenText || !src.tokenType) throw new UsageError('a grammar needs the tokenizer\'s token texts (tokenText/tokenType) or tokenBytes(id)');
  const text = src.tokenText(id);
  const type = src.tokenType(id);
  if (type === TokenType.Byte) {
    const b = byteTokenValue(text);
    return b === undefined ? utf8(text) : Uint8Array.of(b);
  }
  if (type === TokenType.UserDefined) return utf8(text);
  if (type !== TokenType.Normal) return undefined;
  return src.kind === 'bpe' ? byteLevelBytes(text) : utf8(text.replaceAll(SPM_SPACE, ' '));
}

const cache = new WeakMap<object, TokenVocab>();

/** The vocabulary index of a tokenizer, built on first use and cached for its lifetime. */
export function tokenVocab(src: VocabSource): TokenVocab {
  let v = cache.get(src);
  if (!v) {
    v = new TokenVocab(src);
    cache.set(src, v);
  }
  return v;
}
