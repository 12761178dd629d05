// --json-schema FILE|JSON and --grammar-file FILE: read and checked before the model
// loads (src/grammar/cli.ts), then through the real bin on a random-weight model:
// `qllm run` prints JSON that validates, and `qllm chat` answers in the grammar.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { grammarFlagOptions } from '../../src/grammar/cli.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { qllm, shell } from '../cli/helpers.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { validate } from './json-validate.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-grammar-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('grammarFlagOptions', () => {
  it('reads a schema inline or from a file, and a grammar file', () => {
    expect(grammarFlagOptions('{"type": "integer"}', undefined)).toEqual({ jsonSchema: { type: 'integer' } });
    expect(grammarFlagOptions(file('s.json', '{"enum": [1, 2]}'), undefined)).toEqual({ jsonSchema: { enum: [1, 2] } });
    expect(grammarFlagOptions(undefined, file('g.gbnf', 'root ::= "a"\n'))).toEqual({ grammar: 'root ::= "a"\n' });
    expect(grammarFlagOptions(undefined, undefined)).toEqual({});
  });
  it('refuses bad input in one line naming the flag', () => {
    const cases: [string | undefined, string | undefined, RegExp][] = [
      ['{"a": ', undefined, /^--json-schema: not valid JSON/],
      [join(dir, 'missing.json'), undefined, /^--json-schema .*missing\.json: cannot read the file \(ENOENT\)/],
      ['{"type": "object", "minProperties": 2}', undefined, /^--json-schema: JSON schema at \/: 'minProperties' is not supported/],
      [undefined, file('bad.gbnf', 'root ::= "a" b\n'), /^--grammar-file .*bad\.gbnf: grammar line 1, column 14 .*rule 'b' is used but never defined/],
      ['{}', file('ok.gbnf', 'root ::= "a"'), /^give either --json-schema or --grammar-file, not both$/],
    ];
    for (const [s, g, re] of cases) {
      let err: unknown;
      try {
        grammarFlagOptions(s, g);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

const gpu = !!(await getTestEngine());
describe.skipIf(!gpu)('qllm run / chat with --json-schema and --grammar-file', () => {
  let model = '';
  beforeAll(async () => {
    model = join(dir, 'tiny.gguf');
    await makeModel({ out: model, preset: 'tiny', type: 'q8_0', seed: 5, ctx: 512 });
  });

  it('run --json-schema: stdout is JSON that validates; exit 0', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 6 }, n: { type: 'integer', minimum: 1, maximum: 5 } }, required: ['city', 'n'] };
    const r = await qllm(['run', model, '-p', 'Give JSON', '--temp', '1', '--seed', '4', '--json-schema', JSON.stringify(schema), '--no-stats']);
    expect(r.code, r.stderr).toBe(0);
    expect(validate(JSON.parse(r.stdout), schema)).toBe('');
  });

  it('run --grammar-file at temp 0 and chat with it', async () => {
    const g = file('color.gbnf', '# one colour\nroot ::= "It is " ("red" | "green" | "blue") "."\n');
    const r = await qllm(['run', model, '-p', 'Colour?', '--temp', '0', '--grammar-file', g, '--no-stats']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^It is (red|green|blue)\.$/);
    const c = await shell(`printf 'Colour?\\nAgain?\\n' | qllm chat '${model}' --grammar-file '${g}' --seed 1`);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.trim().split('\n').map((l) => l.trim())).toEqual([expect.stringMatching(/^It is (red|green|blue)\.$/), expect.stringMatching(/^It is (red|green|blue)\.$/)]);
  });

  it('a bad grammar fails before loading, exit 1, one line', async () => {
    const r = await qllm(['run', model, '-p', 'x', '--grammar-file', file('lr.gbnf', 'root ::= root "a" | "b"\n')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^qllm: --grammar-file .*lr\.gbnf: the grammar is left-recursive at rule 'root'/);
    expect(r.stderr).not.toMatch(/load \d+ ms/);
  });
});
