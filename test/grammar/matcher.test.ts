// The matcher against llama.cpp's tests/test-grammar-integration.cpp (fixtures/llama-integration.json):
// every grammar and schema case, its passing and failing strings, fed the way llama.cpp's
// test feeds them (one code point at a time as token 0, token(N) as token N); then the
// build failures that file checks, and the partial-UTF-8 rules.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { compileGrammar, jsonSchemaToGbnf } from '../../src/grammar/index.ts';
import { type Cursor, feedBytes, feedToken, type Grammar, matchesString, startCursor } from '../../src/grammar/matcher.ts';
import cases from './fixtures/llama-integration.json' with { type: 'json' };

type Part = string | { token: number };
const enc = new TextEncoder();

/** llama.cpp's match_string: each code point as token 0, each token(N) as token N with piece "<[N]>". */
function matchParts(g: Grammar, input: Part | Part[]): boolean {
  const parts = Array.isArray(input) ? input : [input];
  let c: Cursor | null = startCursor(g);
  for (const p of parts) {
    const pieces: [number, string][] = typeof p === 'string' ? [...p].map((ch) => [0, ch]) : [[p.token, `<[${p.token}]>`]];
    for (const [id, piece] of pieces) {
      c = feedToken(g, c!, id, enc.encode(piece));
      if (!c) return false;
    }
  }
  return c!.rem === 0 && c!.set.complete;
}

// qllm refuses what llama.cpp silently ignores: these schemas are tested without the keyword.
const WITHOUT: Record<string, string> = { 'required props': 'uniqueItems' };

describe('matcher: llama.cpp test-grammar-integration cases', () => {
  it('has the cases', () => {
    expect(cases.length).toBeGreaterThan(40);
  });
  for (const [i, c] of cases.entries()) {
    it(`#${i} ${c.kind} ${c.desc || c.text.trim().slice(0, 40)}`, () => {
      let text = c.text;
      if (c.kind === 'schema') {
        const schema = JSON.parse(text);
        const drop = WITHOUT[c.desc];
        if (drop) {
          expect(() => jsonSchemaToGbnf(schema)).toThrow(new RegExp(drop));
          delete schema.properties.tags[drop];
        }
        text = jsonSchemaToGbnf(schema);
      }
      const g = compileGrammar(text);
      for (const s of c.pass) expect(matchParts(g, s as Part[]), `should match ${JSON.stringify(s)}`).toBe(true);
      for (const s of c.fail) expect(matchParts(g, s as Part[]), `should not match ${JSON.stringify(s)}`).toBe(false);
    });
  }
  it('price with exclusiveMinimum 0 rejects a negative price (llama.cpp lets it through)', () => {
    const c = cases.find((x) => x.desc === 'required props')!;
    const schema = JSON.parse(c.text);
    delete schema.properties.tags.uniqueItems;
    const g = compileGrammar(jsonSchemaToGbnf(schema));
    expect(matchesString(g, '{"productId": 1, "productName": "A green door", "price": -12.50}')).toBe(false);
    expect(matchesString(g, '{"productId": 1, "productName": "A green door", "price": 0}')).toBe(false);
    expect(matchesString(g, '{"productId": 1, "productName": "A green door", "price": 0.01}')).toBe(true);
  });
});

describe('matcher: grammars that cannot be built', () => {
  const fails: [string, string, RegExp][] = [
    ['missing root', 'rot ::= expr\nexpr ::= term ("+" term)*\nterm ::= number\nnumber ::= [0-9]+', /no 'root' rule/],
    ['missing reference', 'root ::= expr\n        expr ::= term ("+" term)*\n        term ::= numero\n        number ::= [0-9]+', /'numero' is used but never defined/],
    ['left recursion', 'root ::= "a" | root "a"', /left-recursive at rule 'root'/],
    ['indirect left recursion', 'root ::= asdf\nasdf ::= "a" | asdf "a"', /left-recursive at rule 'asdf'/],
    ['mutual left recursion', 'root ::= asdf\nasdf ::= "a" | foo "b"\nfoo ::= "c" | asdf "d" | "e"', /left-recursive/],
    ['left recursion through an empty rule', 'root ::= asdf\nasdf ::= "a" | foo "b"\nfoo ::= "c" | empty asdf "d" | "e"\nempty ::= "blah" | ', /left-recursive/],
    ['left recursion in a group', 'root ::= "x" | ("y" | root "z") "w"', /left-recursive at rule 'root'/],
    ['left recursion through a group', 'root ::= "a" (b | "c")\nb ::= (b "x")* "y"', /left-recursive at rule 'b'/],
    ['no finite string', 'root ::= "a" b\nb ::= "b" b', /matches no string/],
    ['empty class', 'root ::= [^\\x00-\\U0010FFFF]', /matches no string/],
  ];
  for (const [name, text, re] of fails) {
    it(name, () => {
      expect(() => compileGrammar(text)).toThrow(UsageError);
      expect(() => compileGrammar(text)).toThrow(re);
    });
  }
  it('a repetition of something that may be empty runs (llama.cpp accepts it too)', () => {
    const g = compileGrammar('root ::= "a" ("b"?)* "c"');
    expect(matchesString(g, 'abbc')).toBe(true);
    expect(matchesString(g, 'ac')).toBe(true);
    expect(matchesString(g, 'abx')).toBe(false);
  });
  it('a custom start rule', () => {
    expect(() => compileGrammar('foobar ::= "foobar"')).toThrow(/no 'root' rule/);
    expect(matchesString(compileGrammar('foobar ::= "foobar"', { root: 'foobar' }), 'foobar')).toBe(true);
    expect(() => compileGrammar('root ::= "foobar"', { root: 'nonexistent' })).toThrow(/no 'nonexistent' rule/);
  });
  it('drops alternatives that can never finish, so generation cannot get stuck in them', () => {
    const g = compileGrammar('root ::= "a" b | "c"\nb ::= "b" b');
    expect(matchesString(g, 'c')).toBe(true);
    // "a" leads only into b, which never ends: it is not a way in at all.
    expect(feedBytes(g, startCursor(g), enc.encode('a'))).toBeNull();
  });
});

describe('matcher: UTF-8 split across tokens', () => {
  const g = compileGrammar('root ::= "é" [α-ω]+ "!"');
  const bytes = (...b: number[]) => Uint8Array.from(b);
  it('carries a partial character to the next token', () => {
    let c = feedBytes(g, startCursor(g), bytes(0xc3))!;
    expect(c).not.toBeNull();
    expect(c.rem).toBe(1);
    expect(c.set.complete).toBe(false);
    c = feedBytes(g, c, bytes(0xa9, 0xce))!; // é done, α started
    expect(c.rem).toBe(1);
    c = feedBytes(g, c, bytes(0xb1, 0x21))!; // α done, then "!"
    expect(c.rem).toBe(0);
    expect(c.set.final).toBe(true);
  });
  it('rejects a partial character no completion of which the grammar allows', () => {
    expect(feedBytes(g, startCursor(g), bytes(0xe2))).toBeNull(); // 3-byte chars are U+0800..: not é
    expect(feedBytes(g, startCursor(g), bytes(0xc3, 0xa8))).toBeNull(); // è
  });
  it('rejects invalid UTF-8: stray continuation, overlong, surrogate, past U+10FFFF', () => {
    const any = compileGrammar('root ::= .*');
    for (const b of [[0x80], [0xc0, 0x80], [0xe0, 0x80], [0xed, 0xa0], [0xf4, 0x90], [0xf8], [0x41, 0xff]]) {
      expect(feedBytes(any, startCursor(any), Uint8Array.from(b)), JSON.stringify(b)).toBeNull();
    }
    expect(feedBytes(any, startCursor(any), bytes(0xf0, 0x9f, 0x98, 0x80))?.rem).toBe(0);
  });
  it('a negated class accepts a partial character unless it excludes every completion', () => {
    const neg = compileGrammar('root ::= [^\\u0080-\\u07FF]');
    expect(feedBytes(neg, startCursor(neg), bytes(0xc3))).toBeNull(); // every 2-byte char is excluded
    expect(feedBytes(neg, startCursor(neg), bytes(0xe2))).not.toBeNull();
    const some = compileGrammar('root ::= [^é]');
    expect(feedBytes(some, startCursor(some), bytes(0xc3))).not.toBeNull(); // C3 80..BF: only one excluded
  });
});
