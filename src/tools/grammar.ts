// GBNF for a forced tool call (tool_choice 'required' or a named function): exactly
// the family's call syntax (format.ts) around a JSON object whose arguments match
// the function's parameter schema. Each function's arguments are compiled on
// their own by src/grammar's JSON-schema converter (so their $refs resolve against
// their own schema) and their rules renamed apart; the wrapper is written here.
import type { Tool } from '../api.ts';
import { UsageError } from '../errors.ts';
import { jsonSchemaToGbnf } from '../grammar/index.ts';
import type { ToolFormat } from './format.ts';

export interface ToolGrammarOptions {
  format: ToolFormat;
  /** The functions a call may name (one for a named tool_choice). */
  tools: Tool[];
  /** Several calls in one reply. */
  parallel: boolean;
  /** Generic format only: the reply may be {"response": …} instead of a call (tool_choice 'auto'). */
  allowResponse?: boolean;
  /** Generic format only: the schema of that response (default: any string). */
  responseSchema?: unknown;
  /** Mistral's 9-character call ids in the call ([TOOL_CALLS] JSON always; [CALL_ID] where the template has it). */
  callId?: boolean;
  /**
   * GBNF for a marker such as [TOOL_CALLS]: `<[id]>` when it is one special token of
   * the model (a control token matches no text), else the literal. Default: literal.
   */
  marker?: (text: string) => string;
}

/** A GBNF string literal. */
export const lit = (s: string) => `"${s.replace(/[\\"\n\r\t]/g, (c) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] as string)}"`;

/**
 * Renames every rule of a GBNF text to `prefix + name` (string literals, character
 * classes, <token> references, {m,n} counts and comments are left alone).
 */
export function prefixRules(gbnf: string, prefix: string): string {
  let out = '';
  let i = 0;
  const n = gbnf.length;
  const skipQuoted = (close: string) => {
    const start = i++;
    while (i < n && gbnf[i] !== close) i += gbnf[i] === '\\' ? 2 : 1;
    i++;
    out += gbnf.slice(start, i);
  };
  while (i < n) {
    const c = gbnf[i];
    if (c === '"') skipQuoted('"');
    else if (c === '[') skipQuoted(']');
    else if (c === '<') skipQuoted('>');
    else if (c === '{') skipQuoted('}');
    else if (c === '#') {
      const e = gbnf.indexOf('\n', i);
      const end = e < 0 ? n : e;
      out += gbnf.slice(i, end);
      i = end;
    } else if (/[a-zA-Z0-9-]/.test(c)) {
      const m = /^[a-zA-Z0-9-]+/.exec(gbnf.slice(i, i + 200)) as RegExpExecArray;
      out += prefix + m[0];
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The parameters' schema, as a grammar whose start rule is `${prefix}root`. */
function argsGrammar(tool: Tool, prefix: string): string {
  const params = tool.function.parameters ?? { type: 'object' };
  try {
    return prefixRules(jsonSchemaToGbnf(params), prefix);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`tool '${tool.function.name}': its parameters ${e.message.replace(/^the JSON schema/i, 'schema')}`);
    throw e;
  }
}

export function toolGrammar(o: ToolGrammarOptions): string {
  if (o.tools.length === 0) throw new UsageError('a forced tool call needs at least one tool');
  if (o.format === 'harmony') return harmonyGrammar(o.tools);
  const marker = o.marker ?? lit;
  const rules: string[] = [];
  const alts: string[] = [];
  const jsonName = (name: string) => lit(JSON.stringify(name));
  o.tools.forEach((t, i) => {
    const p = `t${i}-`;
    rules.push(argsGrammar(t, p));
    const name = t.function.name;
    const args = `${p}root`;
    switch (o.format) {
      case 'llama3':
        alts.push(`${lit('{"name": ')} ${jsonName(name)} ${lit(', "parameters": ')} ${args} "}"`);
        break;
      case 'mistral':
        alts.push(`${lit('{"name": ')} ${jsonName(name)} ${lit(', "arguments": ')} ${args} ${lit(', "id": "')} [a-zA-Z0-9]{9} ${lit('"}')}`);
        break;
      case 'mistral-args':
        alts.push(`${lit(name)} ${o.callId ? `${marker('[CALL_ID]')} [a-zA-Z0-9]{9} ` : ''}${marker('[ARGS]')} ${args}`);
        break;
      default:
        alts.push(`${lit('{"name": ')} ${jsonName(name)} ${lit(', "arguments": ')} ${args} "}"`);
    }
  });
  rules.push(`tool-call ::= ${alts.join(' | ')}`);
  const more = (sep: string, item: string) => (o.parallel ? `${item} (${sep} ${item})*` : item);
  let root: string;
  switch (o.format) {
    case 'hermes':
      rules.push(`tool-block ::= ${marker('<tool_call>')} "\\n" tool-call "\\n" ${marker('</tool_call>')}`);
      root = more('"\\n"', 'tool-block');
      break;
    case 'llama3':
      // Llama 3.x makes one call per turn (its template refuses more).
      root = 'tool-call';
      break;
    case 'mistral':
      root = `${marker('[TOOL_CALLS]')} "[" ${more('", "', 'tool-call')} "]"`;
      break;
    case 'granite':
      root = `${marker('<|tool_call|>')} "[" ${more('", "', 'tool-call')} "]"`;
      break;
    case 'mistral-args':
      rules.push(`tool-block ::= ${marker('[TOOL_CALLS]')} tool-call`);
      root = o.parallel ? 'tool-block+' : 'tool-block';
      break;
    case 'generic': {
      const calls = o.parallel ? `${lit('{"tool_calls": [')} tool-call (", " tool-call)* "]}"` : `${lit('{"tool_call": ')} tool-call "}"`;
      if (o.allowResponse) {
        rules.push(prefixRules(jsonSchemaToGbnf(o.responseSchema ?? { type: 'string' }), 'r-'));
        root = `${calls} | ${lit('{"response": ')} r-root "}"`;
      } else root = calls;
      break;
    }
  }
  return `root ::= ${root}\n${rules.join('\n')}\n`;
}

/** A character class of these characters (`^`: all others). */
const charClass = (cs: string[], not = false) => `[${not ? '^' : ''}${cs.map((c) => (/[\\\]^-]/.test(c) ? `\\${c}` : c)).join('')}]`;

/**
 * Rules `${name}0`, `${name}1`, … matching any text that does not contain `s`
 * (llama.cpp's gbnf_excluding_grammar for one string): rule d is the state after
 * the first d characters of `s`; a character that would complete `s` has no way on.
 */
export function excluding(name: string, s: string): string {
  const chars = [...new Set(s)];
  // The longest prefix of s that ends the text matched so far plus c (KMP's step).
  const step = (d: number, c: string) => {
    const t = s.slice(0, d) + c;
    for (let k = Math.min(t.length, s.length); k > 0; k--) if (t.endsWith(s.slice(0, k))) return k;
    return 0;
  };
  const rules: string[] = [];
  for (let d = 0; d < s.length; d++) {
    const to = new Map<number, string[]>();
    for (const c of chars) {
      const t = step(d, c);
      if (t < s.length) to.set(t, [...(to.get(t) ?? []), c]);
    }
    const alts = [...to].map(([t, cs]) => `${charClass(cs)} ${name}${t}`);
    alts.push(`${charClass(chars, true)} ${name}0`);
    rules.push(`${name}${d} ::= (${alts.join(' | ')})?`);
  }
  return rules.join('\n');
}

/**
 * gpt-oss's forced call, as llama.cpp's gpt-oss grammar has it (generation starts
 * after the prompt's <|start|>assistant): any analysis or commentary messages, then
 * one call, the recipient in the role or the channel header, an optional
 * constraint, and the arguments. <|call|> (end of generation) follows. The
 * markers are literals: gpt-oss's are user-defined tokens that print their text.
 */
function harmonyGrammar(tools: Tool[]): string {
  const rules: string[] = [];
  const alts: string[] = [];
  tools.forEach((t, i) => {
    const p = `t${i}-`;
    rules.push(argsGrammar(t, p));
    const to = lit(` to=functions.${t.function.name}`);
    const msg = `${lit('<|message|>')} ${p}root`;
    alts.push(`${to} h-channel h-constrain ${msg} | h-channel ${to} h-constrain ${msg}`);
  });
  rules.push(
    `tool-call ::= ${alts.join(' | ')}`,
    `h-msg ::= (${lit('<|channel|>commentary')} ${lit(' to=assistant')}?)? ${lit('<|channel|>analysis<|message|>')} h-body0 ${lit('<|end|>')} | ${lit('<|channel|>commentary<|message|>')} h-body0 ${lit('<|end|>')}`,
    `h-channel ::= ${lit('<|channel|>')} ("commentary" | "analysis")`,
    // ` json`, `<|constrain|>json`, ` <|constrain|>json`; never glued to the name.
    `h-constrain ::= (([ \\t\\n]+ ${lit('<|constrain|>')}? | ${lit('<|constrain|>')}) [A-Za-z0-9_-]+)?`,
    excluding('h-body', '<|end|>'),
  );
  return `root ::= (h-msg ${lit('<|start|>assistant')})* tool-call\n${rules.join('\n')}\n`;
}
