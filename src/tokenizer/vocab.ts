// Token types (tokenizer.ggml.token_type, llama.cpp's llama_token_type) and the
// per-token byte pieces the decoder concatenates.

export enum TokenType {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

/**
 * GPT-2's byte <-> printable-char table: bytes that are printable Latin-1 map to
 * themselves, the other 68 map to U+0100.. in byte order. Byte-level vocabularies
 * spell every token in these chars.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep(b) ? b : 256 + n++);
  return out;
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const enc = new TextEncoder();

/** Bytes of a byte-level token; chars outside the table (should not occur) pass through as UTF-8. */
export function byteLevelBytes(token: string): Uint8Array {
  const out: number[] = [];
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) out.push(b);
    else for (const x of enc.encode(ch)) out.push(x);
  }
  return Uint8Array.from(out);
}

/** `<0xAB>` -> 0xAB, or undefined. */
export function byteTokenValue(token: string): number | undefined {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
  return m ? Number.parseInt(m[1], 16) : undefined;
}

export const utf8 = (s: string) => enc.encode(s);

/**
 * Ids matched as whole tokens in text before BPE: llama.cpp always matches user-defined
 * pieces, and control/unknown pieces only when parsing special text.
 */
export function addedTokenIds(types: Int32Array, parseSpecial: boolean): number[] {
  const out: number[] = [];
  for (let id = 0; id < types.length; id++) {
    const t = types[id];
    if (t === TokenType.UserDefined || (parseSpecial && (t === TokenType.Control || t === TokenType.Unknown))) out.push(id);
  }
  return out;
}

/** tokenizer.json `added_tokens` for those ids. */
export function addedTokens(tokens: readonly string[], types: Int32Array, parseSpecial: boolean): object[] {
  return addedTokenIds(types, parseSpecial).map((id) => ({
    id, content: tokens[id], special: true, normalized: false, lstrip: false, rstrip: false, single_word: false,
  }));
}
