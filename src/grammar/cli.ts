// The CLI's --json-schema FILE|JSON and --grammar-file FILE (qllm run / chat):
// read, parse and check them before the model loads. Node only (reads files), so
// it is not exported from index.ts, which the browser bundle includes.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.ts';
import { checkGrammarChoice } from './index.ts';

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag} ${path}: cannot read the file (${code ?? (e as Error).message}): check the path`);
  }
}

/**
 * GenerateOptions.grammar / .jsonSchema from the flags' values. `schema` is inline
 * JSON when it starts with '{' (or is true), else a file path. Throws UsageError
 * naming the flag.
 */
export function grammarFlagOptions(schema: string | undefined, grammarFile: string | undefined): { grammar?: string; jsonSchema?: object | boolean } {
  if (schema !== undefined && grammarFile !== undefined) throw new UsageError('give either --json-schema or --grammar-file, not both');
  const prefixed = (flag: string, f: () => void) => {
    try {
      f();
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${flag}: ${e.message}`);
      throw e;
    }
  };
  if (grammarFile !== undefined) {
    const grammar = readText(grammarFile, '--grammar-file');
    prefixed(`--grammar-file ${grammarFile}`, () => checkGrammarChoice({ grammar }));
    return { grammar };
  }
  if (schema === undefined) return {};
  const inline = /^\s*(\{|true\s*$)/.test(schema);
  const text = inline ? schema : readText(schema, '--json-schema');
  const where = inline ? '--json-schema' : `--json-schema ${schema}`;
  let jsonSchema: object | boolean;
  try {
    jsonSchema = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${where}: not valid JSON (${(e as Error).message}): give a schema file or inline JSON such as '{"type": "object"}'`);
  }
  prefixed(where, () => checkGrammarChoice({ jsonSchema }));
  return { jsonSchema };
}
