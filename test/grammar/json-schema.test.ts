// JSON Schema -> GBNF against llama.cpp's tests/test-json-schema-to-grammar.cpp
// (fixtures/llama-json-schema.json): the same grammar text wherever qllm converts the
// same way; where it deliberately differs (patterns spelled as JSON-escaped text and
// matched with JS RegExp semantics, allOf merged by the spec, refusals), the language
// is checked instead. Then number ranges, refusals and response_format.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { compileGrammar, compileResponseFormat, jsonSchemaToGbnf, matchesString } from '../../src/grammar/index.ts';
import cases from './fixtures/llama-json-schema.json' with { type: 'json' };

const trim = (s: string) => s.trim().replace(/(^|\n)[ \t]+/g, '$1');
const accepts = (schema: unknown, json: string) => matchesString(compileGrammar(jsonSchemaToGbnf(schema)), json);

/** Cases whose grammar text differs on purpose, with the strings that show the language. */
const DIFFERENT: Record<string, { pass: string[]; fail: string[] }> = {
  'simple regexp': { pass: ['"abefgkl"', '"abcddefgghijkl"'], fail: ['"abefkl"', '"abcdefkl"', '"abefgkll"', '""'] },
  // llama.cpp writes a bare quote inside the string (invalid JSON): qllm writes \"
  'regexp quote': { pass: [String.raw`"\""`], fail: ['"""'] },
  // JS semantics: ^A|B|C|D$ is (^A)|B|C|(D$), so B and C match anywhere.
  'regexp with top-level alternation': { pass: ['"A"', '"Axyz"', '"xBx"', '"xD"'], fail: ['"xA"', '"Dx"', '"x"'] },
  regexp: { pass: ['"(123)456-7890 aaand..."', '"456-7890 aaaaand\\"\\\\\\u0001"'], fail: ['"456-7890 aand..."', '"456-7890 aaand\\n.."'] },
  // allOf parts' properties stay optional (the schema requires none); llama.cpp makes a and b required.
  'mix of allOf, anyOf and $ref (similar to https://json.schemastore.org/tsconfig.json)': {
    pass: ['{}', '{"a": 1, "b": 2}', '{"a": 1, "b": 2, "d": 3, "c": 4}', '{"c": 4}'],
    fail: ['{"c": 4, "d": 3}', '{"e": 1}'],
  },
  'regexp with nested non-capturing groups': { pass: ['"d"', '"abcd"', '"ababcd"'], fail: ['"cd"', '"abd"'] },
  // Unanchored: a match anywhere (llama.cpp: any string).
  'unanchored regexp': { pass: ['"1"', '"ab12cd"'], fail: ['"abc"', '""'] },
  // \w is supported (llama.cpp: any string).
  'regexp with unsupported shorthand': { pass: ['"123a"', '"123_"'], fail: ['"123-"', '"12a"'] },
  // [a-z\-]: the escaped dash is supported (llama.cpp: any string).
  'unsupported regexp in a property': { pass: ['{"a": "a-b"}'], fail: ['{"a": "A"}', '{"a": ""}'] },
};

describe('JSON schema: llama.cpp test-json-schema-to-grammar cases', () => {
  it('has the cases', () => {
    expect(cases.length).toBeGreaterThan(70);
  });
  for (const c of cases) {
    it(`${c.name} (${c.status})`, () => {
      if (c.status === 'FAILURE') {
        expect(() => jsonSchemaToGbnf(c.schema)).toThrow(UsageError);
        return;
      }
      const text = jsonSchemaToGbnf(c.schema);
      const g = compileGrammar(text); // every grammar qllm writes also parses and checks
      const diff = DIFFERENT[c.name];
      if (!diff) {
        expect(trim(text)).toBe(trim(c.grammar));
        return;
      }
      expect(trim(text)).not.toBe(trim(c.grammar));
      for (const s of diff.pass) expect(matchesString(g, s), s).toBe(true);
      for (const s of diff.fail) expect(matchesString(g, s), s).toBe(false);
    });
  }
});

describe('JSON schema: patterns agree with JavaScript RegExp on the decoded string', () => {
  const samples = ['', 'a', 'ab', 'abc', 'A1', 'a-b', '12', '123', '1234', 'x\ny', 'tab\there', 'q"uote', 'back\\slash', 'é', 'ü1', '😀', '2024-01-31', 'a.b', 'a b', '\u0001'];
  const patterns = ['^[a-z]+$', '^\\d{2,3}$', '^[^0-9]*$', '^.+$', '^\\w+$', '^\\s*$', '^(a|b)+c?$', '^[\\s\\S]*"[\\s\\S]*$', '^\\\\', 'é|😀', '^\\S+$', '^\\d{4}-\\d{2}-\\d{2}$', '^[\\x00-\\x1f]$', '^\\p{L}$'.replace('\\p{L}', '[a-zA-Z\\u00c0-\\u024f]'), '\\.', '^[^"\\\\]+$'];
  for (const p of patterns) {
    it(p, () => {
      const g = compileGrammar(jsonSchemaToGbnf({ type: 'string', pattern: p }));
      const re = new RegExp(p, 'u');
      for (const s of samples) expect(matchesString(g, JSON.stringify(s)), `${JSON.stringify(s)}`).toBe(re.test(s));
    });
  }
  it('refuses what a grammar cannot express, naming the pattern', () => {
    for (const [p, why] of [['^(?=a)a$', /lookarounds/], ['^(a)\\1$', /backreferences/], ['\\bword\\b', /word boundaries/], ['^a$|^(b$)', /\^ and \$/], ['^(a$', /invalid: unbalanced/], ['^\\p{L}$', /Unicode property/], ['^a{3000}$', /limit/]] as const) {
      expect(() => jsonSchemaToGbnf({ type: 'string', pattern: p }), p).toThrow(why);
    }
  });
});

describe('JSON schema: number and integer ranges', () => {
  const values = [-1001, -100, -10.5, -10, -9.99, -1, -0.5, -0.01, 0, 0.01, 0.5, 1, 1.5, 9, 9.5, 10, 10.25, 11, 99.9, 100, 100.5, 1000, 123456];
  const ranges: [Record<string, number>, (x: number) => boolean][] = [
    [{ minimum: 0 }, (x) => x >= 0],
    [{ minimum: 0, maximum: 1 }, (x) => x >= 0 && x <= 1],
    [{ exclusiveMinimum: 0 }, (x) => x > 0],
    [{ minimum: -10, maximum: 10 }, (x) => x >= -10 && x <= 10],
    [{ exclusiveMinimum: -10, exclusiveMaximum: 10 }, (x) => x > -10 && x < 10],
    [{ maximum: -1 }, (x) => x <= -1],
    [{ exclusiveMaximum: 0 }, (x) => x < 0],
    [{ minimum: 9, exclusiveMaximum: 100 }, (x) => x >= 9 && x < 100],
    [{ minimum: 10, maximum: 10 }, (x) => x === 10],
  ];
  for (const [bounds, inRange] of ranges) {
    it(`number ${JSON.stringify(bounds)}`, () => {
      const g = compileGrammar(jsonSchemaToGbnf({ type: 'number', ...bounds }));
      for (const x of values) expect(matchesString(g, String(x)), String(x)).toBe(inRange(x));
      // Zero fractions at an inclusive bound, and never an exponent.
      if (inRange(10)) expect(matchesString(g, '10.00')).toBe(true);
      expect(matchesString(g, '1e1')).toBe(false);
    });
    it(`integer ${JSON.stringify(bounds)}`, () => {
      const g = compileGrammar(jsonSchemaToGbnf({ type: 'integer', ...bounds }));
      for (const x of values) expect(matchesString(g, String(x)), String(x)).toBe(Number.isInteger(x) && inRange(x));
    });
  }
  it('-0 only where 0 is in range; no leading zeros', () => {
    const g = compileGrammar(jsonSchemaToGbnf({ type: 'number', minimum: -5, maximum: 5 }));
    expect(matchesString(g, '-0.5')).toBe(true);
    expect(matchesString(g, '007')).toBe(false);
    const pos = compileGrammar(jsonSchemaToGbnf({ type: 'number', exclusiveMinimum: 0 }));
    expect(matchesString(pos, '-0.0')).toBe(false);
    expect(matchesString(pos, '0.0')).toBe(false);
  });
  it('refuses empty ranges and non-integer number bounds', () => {
    expect(() => jsonSchemaToGbnf({ type: 'integer', minimum: 5, maximum: 4 })).toThrow(/no integer lies between/);
    expect(() => jsonSchemaToGbnf({ type: 'number', exclusiveMinimum: 3, exclusiveMaximum: 3 })).toThrow(/no number lies between/);
    expect(() => jsonSchemaToGbnf({ type: 'number', minimum: 0.5 })).toThrow(/not integers/);
    expect(accepts({ type: 'integer', minimum: 0.5, maximum: 2.5 }, '1')).toBe(true);
    expect(accepts({ type: 'integer', minimum: 0.5, maximum: 2.5 }, '3')).toBe(false);
  });
});

describe('JSON schema: what qllm refuses instead of ignoring, and its extensions', () => {
  const refused: [unknown, RegExp][] = [
    [{ type: 'array', items: { type: 'string' }, uniqueItems: true }, /at \/: 'uniqueItems' is not supported/],
    [{ type: 'integer', multipleOf: 5 }, /'multipleOf' is not supported/],
    [{ properties: { a: { not: { type: 'string' } } } }, /at \/properties\/a: 'not' is not supported/],
    [{ type: 'object', minProperties: 1 }, /'minProperties'/],
    [JSON.parse('{"if": {"type": "string"}, "then": {"minLength": 1}}'), /'if'/],
    [{ type: 'string', pattern: '^a+$', minLength: 3 }, /'minLength' is not supported together with 'pattern'/],
    [{ $ref: '#/$defs/a', type: 'string', $defs: { a: { type: 'string' } } }, /'type' is not supported together with '\$ref'/],
    [{ anyOf: [{ type: 'string' }], properties: { a: {} } }, /'properties' is not supported together with 'anyOf'/],
    [{ type: 'string', enum: ['a', 'bb'], maxLength: 1 }, /'maxLength' is not supported together with 'enum'/],
    [{ $ref: 'https://example.com/s.json' }, /only local references/],
    [{ $ref: '#/$defs/missing' }, /points nowhere/],
    [{ type: 'strin' }, /unknown type "strin"/],
    [{ type: 'object', required: ['x'], additionalProperties: false }, /required property "x" is not in 'properties'/],
    [{ minLength: 1, minimum: 0 }, /several types/],
    [{ type: 'string', minLength: 5000 }, /repetition limit/],
    [{ anyOf: [] }, /anyOf is empty/],
    [{ type: [] }, /type is an empty list/],
    [{ enum: [] }, /enum has no values/],
    [false, /matches nothing/],
    ['{"type": ', /not valid JSON/],
    [[1], /must be an object/],
  ];
  for (const [schema, re] of refused) {
    it(JSON.stringify(schema), () => {
      expect(() => jsonSchemaToGbnf(schema)).toThrow(UsageError);
      expect(() => jsonSchemaToGbnf(schema)).toThrow(re);
    });
  }
  it('required names missing from properties are still produced', () => {
    const s = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a', 'b'] };
    expect(accepts(s, '{"a": 1, "b": "anything"}')).toBe(true);
    expect(accepts(s, '{"a": 1}')).toBe(false);
  });
  it('a type is inferred from its keywords; enum values are filtered by type', () => {
    expect(accepts({ minLength: 2, maxLength: 3 }, '"ab"')).toBe(true);
    expect(accepts({ minLength: 2, maxLength: 3 }, '"a"')).toBe(false);
    expect(accepts({ minimum: 1, maximum: 3 }, '2')).toBe(true);
    expect(accepts({ minimum: 1, maximum: 3 }, '4')).toBe(false);
    expect(accepts({ type: 'string', enum: ['a', 1, null] }, '1')).toBe(false);
    expect(accepts({ type: 'string', enum: ['a', 1, null] }, '"a"')).toBe(true);
  });
  it('recursive $refs (a tree) and refs by JSON pointer', () => {
    const tree = { $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['v'] } }, $ref: '#/$defs/node' };
    expect(accepts(tree, '{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}')).toBe(true);
    expect(accepts(tree, '{"v": 1, "kids": [{"w": 2}]}')).toBe(false);
  });
  it('large maxLength / maxItems are capped (shorter output still validates)', () => {
    const g = compileGrammar(jsonSchemaToGbnf({ type: 'string', maxLength: 100000 }));
    expect(matchesString(g, JSON.stringify('x'.repeat(1999)))).toBe(true);
    expect(matchesString(g, JSON.stringify('x'.repeat(2000)))).toBe(false);
  });
  it('a property with the schema false is left out (refused when required)', () => {
    expect(accepts({ properties: { a: false, b: { type: 'integer' } } }, '{"b": 1}')).toBe(true);
    expect(accepts({ properties: { a: false, b: { type: 'integer' } } }, '{"a": 1}')).toBe(false);
    expect(() => jsonSchemaToGbnf({ properties: { a: false }, required: ['a'] })).toThrow(/schema false/);
  });
  it('2020-12 tuples: prefixItems with items false', () => {
    const s = { type: 'array', prefixItems: [{ type: 'integer' }, { type: 'string' }], items: false };
    expect(accepts(s, '[1, "a"]')).toBe(true);
    expect(accepts(s, '[1, "a", 2]')).toBe(false);
  });
  it('accepts a schema given as JSON text', () => {
    expect(accepts('{"type": "boolean"}', 'true')).toBe(true);
  });
});

describe('compileResponseFormat (for the server)', () => {
  it('text is unconstrained; json_object is any object; json_schema uses the schema', () => {
    expect(compileResponseFormat(undefined)).toBeUndefined();
    expect(compileResponseFormat({ type: 'text' })).toBeUndefined();
    const obj = compileGrammar(compileResponseFormat({ type: 'json_object' })!);
    expect(matchesString(obj, '{"a": [1, {"b": null}], "c": "d"}')).toBe(true);
    expect(matchesString(obj, '[1]')).toBe(false);
    expect(matchesString(obj, '{"a": 1} ')).toBe(false); // complete at the brace: generation stops there
    const js = compileGrammar(compileResponseFormat({ type: 'json_schema', json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } } })!);
    expect(matchesString(js, '{"n": 5}')).toBe(true);
    expect(matchesString(js, '{"n": "5"}')).toBe(false);
  });
  it('refuses unknown types and bad schemas with one line', () => {
    expect(() => compileResponseFormat({ type: 'xml' })).toThrow(/"xml" is not supported/);
    expect(() => compileResponseFormat({ type: 'json_schema', json_schema: { schema: { type: 'integer', multipleOf: 2 } } })).toThrow(/multipleOf/);
    expect(() => compileResponseFormat('json')).toThrow(UsageError);
  });
});
