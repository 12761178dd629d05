// Constrained sampling: GBNF grammars (llama.cpp's format) and JSON Schemas
// compiled to them, matched token by token against a model's vocabulary.
//
//   compileGrammar(gbnf)            -> Grammar (parse + checks; UsageError when impossible)
//   jsonSchemaToGbnf(schema)        -> GBNF text (llama.cpp's json-schema-to-grammar, stricter)
//   compileResponseFormat(rf)       -> GBNF text for an OpenAI response_format, or undefined
//   constraintFor(opts, tokenizer)  -> the per-generation GrammarConstraint the loop samples through
import { UsageError } from '../errors.ts';
import { GrammarConstraint } from './constraint.ts';
import { jsonSchemaToGbnf } from './json-schema.ts';
import { Grammar, type GrammarOptions, matchesString } from './matcher.ts';
import { parseGbnf } from './parse.ts';
import { tokenVocab, type VocabSource } from './vocab.ts';

export { GrammarConstraint } from './constraint.ts';
export { jsonSchemaToGbnf } from './json-schema.ts';
export { Grammar, matchesString } from './matcher.ts';
export { parseGbnf } from './parse.ts';
export { tokenVocab, type VocabSource } from './vocab.ts';

/** Parses and checks a GBNF grammar. Throws UsageError (syntax, undefined rule, left recursion, empty language). */
export function compileGrammar(gbnf: string, opts: GrammarOptions = {}): Grammar {
  if (typeof gbnf !== 'string') throw new UsageError(`a grammar must be GBNF text, not ${typeof gbnf}`);
  return new Grammar(parseGbnf(gbnf), opts);
}

/** What GenerateOptions may carry. */
export interface GrammarChoice {
  grammar?: string;
  jsonSchema?: unknown;
}

/** The GBNF text for the options (undefined = unconstrained). Throws UsageError. */
export function grammarText(opts: GrammarChoice): string | undefined {
  const hasGrammar = opts.grammar !== undefined && opts.grammar !== null;
  const hasSchema = opts.jsonSchema !== undefined && opts.jsonSchema !== null;
  if (hasGrammar && hasSchema) throw new UsageError('give either a grammar or a JSON schema, not both');
  if (hasGrammar) {
    if (typeof opts.grammar !== 'string') throw new UsageError(`grammar must be GBNF text (a string), not ${typeof opts.grammar}`);
    return opts.grammar;
  }
  return hasSchema ? jsonSchemaToGbnf(opts.jsonSchema) : undefined;
}

/**
 * Checks the grammar or schema of `opts` without a vocabulary (e.g. before a model
 * loads): UsageError if it cannot be used.
 */
export function checkGrammarChoice(opts: GrammarChoice): void {
  const text = grammarText(opts);
  if (text !== undefined) compileChecked(text, opts, {});
}

function compileChecked(text: string, opts: GrammarChoice, g: GrammarOptions): Grammar {
  try {
    return compileGrammar(text, g);
  } catch (e) {
    // A schema's grammar is generated: say so rather than point into text the user never wrote.
    if (opts.jsonSchema !== undefined && e instanceof UsageError) throw new UsageError(`the JSON schema's grammar cannot be used: ${e.message}`);
    throw e;
  }
}

/**
 * The grammar of an OpenAI-style response_format, as llama.cpp's server reads it:
 * {type: 'text'} -> undefined; {type: 'json_object'[, schema]} -> any JSON object
 * (or the schema); {type: 'json_schema', json_schema: {schema}} -> that schema.
 * Throws UsageError for anything else or an unusable schema. The server passes
 * the result as GenerateOptions.grammar.
 */
export function compileResponseFormat(rf: unknown): string | undefined {
  if (rf === undefined || rf === null) return undefined;
  if (typeof rf !== 'object' || Array.isArray(rf)) throw new UsageError('response_format must be an object such as {"type": "json_object"}');
  const r = rf as { type?: unknown; schema?: unknown; json_schema?: unknown };
  let schema: unknown;
  if (r.type === undefined || r.type === 'text') return undefined;
  if (r.type === 'json_object') schema = r.schema ?? {};
  else if (r.type === 'json_schema') {
    const js = r.json_schema;
    if (js !== undefined && (typeof js !== 'object' || js === null || Array.isArray(js))) throw new UsageError('response_format.json_schema must be an object with a "schema"');
    schema = (js as { schema?: unknown } | undefined)?.schema ?? {};
  } else throw new UsageError(`response_format type ${JSON.stringify(r.type)} is not supported: use "text", "json_object" or "json_schema"`);
  const text = jsonSchemaToGbnf(schema);
  compileChecked(text, { jsonSchema: schema }, {});
  return text;
}

/**
 * The constraint for one generation, or undefined without a grammar. `tokenizer`
 * must give each token's bytes (qllm's Tokenizer does). Throws UsageError.
 */
export function constraintFor(opts: GrammarChoice, tokenizer: VocabSource | object): GrammarConstraint | undefined {
  const text = grammarText(opts);
  if (text === undefined) return undefined;
  const src = tokenizer as VocabSource;
  if (typeof src.isEog !== 'function' || !(src.tokenBytes || (src.tokenText && src.tokenType))) {
    throw new UsageError("constrained sampling needs the tokenizer's token texts: use the model's Tokenizer");
  }
  const vocab = tokenVocab(src);
  const grammar = compileChecked(text, opts, { resolveToken: (t) => vocab.idOfText(t) });
  return new GrammarConstraint(grammar, vocab);
}

/** Whether `text` is in the language of the options' grammar (tests, tools). */
export function grammarAccepts(opts: GrammarChoice, text: string): boolean {
  const t = grammarText(opts);
  if (t === undefined) return true;
  return matchesString(compileChecked(t, opts, {}), text);
}
