// GBNF text -> rules, a port of llama.cpp's llama_grammar_parser (src/llama-grammar.cpp)
// with the same symbol ids and element sequences, so its parser tests apply as they are.
//
// Shapes: a rule is a flat list of elements [type, value] ending in END; alternatives
// are separated by ALT. `x*`, `x+`, `x?`, `x{m,n}` and groups become synthesized
// rules named `<rule>_<id>`, exactly as llama.cpp names them. Errors are UsageErrors
// naming the problem and its line:column.
import { printable, UsageError } from '../errors.ts';

// llama_gretype
export const END = 0;
export const ALT = 1;
export const RULE_REF = 2;
export const CHAR = 3;
export const CHAR_NOT = 4;
export const CHAR_RNG_UPPER = 5;
export const CHAR_ALT = 6;
export const CHAR_ANY = 7;
export const TOKEN = 8;
export const TOKEN_NOT = 9;

/** [type, value]: value is a code point, a rule id, or a token id (see ParsedGrammar.tokenNames). */
export type Element = [type: number, value: number];

export interface ParsedGrammar {
  /** rules[id] = elements, END-terminated; an undefined id never survives parsing. */
  rules: Element[][];
  /** Name -> rule id, user rules and synthesized ones (`root_1`). */
  symbolIds: Map<string, number>;
  /**
   * `<text>` tokens, resolved against a vocabulary later: TOKEN/TOKEN_NOT elements
   * with value -(i + 1) stand for tokenNames[i].
   */
  tokenNames: string[];
}

/** llama.cpp's MAX_REPETITION_THRESHOLD. */
export const MAX_REPETITION = 2000;
const UNBOUNDED = Number.POSITIVE_INFINITY;

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isWordChar = (c: string | undefined) => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '-' || isDigit(c));

/** Parses GBNF text. Throws UsageError (one line, with line:column) on a syntax error or an undefined rule. */
export function parseGbnf(src: string): ParsedGrammar {
  return new Parser(src).parse();
}

class Parser {
  readonly symbolIds = new Map<string, number>();
  readonly rules: Element[][] = [];
  readonly tokenNames: string[] = [];
  /** Where each symbol was first referenced, for "used but never defined". */
  private readonly firstUse = new Map<number, number>();

  constructor(private readonly s: string) {}

  parse(): ParsedGrammar {
    let pos = this.space(0, true);
    while (pos < this.s.length) pos = this.rule(pos);
    // Every referenced rule must be defined (llama.cpp: "Undefined rule identifier").
    for (const [name, id] of this.symbolIds) {
      if (this.rules[id] === undefined) {
        const at = this.firstUse.get(id) ?? 0;
        throw new UsageError(`grammar ${this.where(at)}: rule '${name}' is used but never defined: add a line '${name} ::= ...'`);
      }
    }
    return { rules: this.rules, symbolIds: this.symbolIds, tokenNames: this.tokenNames };
  }

  /** "line L, column C (near "…")" for an error at index i. */
  where(i: number): string {
    let line = 1;
    let col = 1;
    for (let k = 0; k < i && k < this.s.length; k++) {
      if (this.s[k] === '\n') { line++; col = 1; } else col++;
    }
    const rest = this.s.slice(i, i + 24).replace(/\n[\s\S]*$/, '');
    return rest ? `line ${line}, column ${col} (at ${printable(JSON.stringify(rest), 40)})` : `line ${line}, column ${col}`;
  }

  private fail(i: number, what: string): never {
    throw new UsageError(`grammar ${this.where(i)}: ${what}`);
  }

  private symbol(name: string): number {
    const id = this.symbolIds.get(name);
    if (id !== undefined) return id;
    const next = this.symbolIds.size;
    this.symbolIds.set(name, next);
    return next;
  }

  private generateSymbol(base: string): number {
    const next = this.symbolIds.size;
    this.symbolIds.set(`${base}_${next}`, next);
    return next;
  }

  private addRule(id: number, rule: Element[]): void {
    this.rules[id] = rule;
  }

  /** Skips blanks and # comments; newlines only when newlineOk. */
  private space(i: number, newlineOk: boolean): number {
    const s = this.s;
    while (i < s.length) {
      const c = s[i];
      if (c === '#') {
        while (i < s.length && s[i] !== '\r' && s[i] !== '\n') i++;
      } else if (c === ' ' || c === '\t' || (newlineOk && (c === '\r' || c === '\n'))) i++;
      else break;
    }
    return i;
  }

  private name(i: number): number {
    let p = i;
    while (isWordChar(this.s[p])) p++;
    if (p === i) this.fail(i, 'expecting a rule name (letters, digits and -)');
    return p;
  }

  private int(i: number): number {
    let p = i;
    while (isDigit(this.s[p])) p++;
    if (p === i) this.fail(i, 'expecting an integer');
    return p;
  }

  private hex(i: number, size: number): [number, number] {
    let v = 0;
    for (let k = 0; k < size; k++) {
      const c = this.s[i + k];
      const d = c === undefined ? -1 : Number.parseInt(c, 16);
      if (Number.isNaN(d) || d < 0) this.fail(i, `expecting ${size} hex digits`);
      v = v * 16 + d;
    }
    if (v > 0x10ffff) this.fail(i - 2, `\\U${this.s.slice(i, i + size)} is beyond the last Unicode code point U+10FFFF`);
    return [v, i + size];
  }

  /** One char of a literal or class: an escape or a code point. */
  private char(i: number): [number, number] {
    const s = this.s;
    if (i >= s.length) this.fail(i, 'unexpected end of input');
    if (s[i] === '\\') {
      const e = s[i + 1];
      switch (e) {
        case 'x': return this.hex(i + 2, 2);
        case 'u': return this.hex(i + 2, 4);
        case 'U': return this.hex(i + 2, 8);
        case 't': return [9, i + 2];
        case 'r': return [13, i + 2];
        case 'n': return [10, i + 2];
        case '\\': case '"': case '[': case ']': case '-':
          return [e.charCodeAt(0), i + 2];
        default:
          this.fail(i, `unknown escape \\${e ?? ''} (known: \\x \\u \\U \\t \\r \\n \\\\ \\" \\[ \\] \\-)`);
      }
    }
    const cp = s.codePointAt(i)!;
    return [cp, i + (cp > 0xffff ? 2 : 1)];
  }

  /** `<[id]>` or `<text>`: [token value, end]. */
  private token(i: number): [number, number] {
    const s = this.s;
    if (s[i] !== '<') this.fail(i, "expecting '<' (a token: <[id]> or <text>)");
    let p = i + 1;
    if (s[p] === '[') {
      const end = this.int(p + 1);
      const id = Number(s.slice(p + 1, end));
      if (s[end] !== ']') this.fail(end, "expecting ']' (a token id: <[123]>)");
      if (s[end + 1] !== '>') this.fail(end + 1, "expecting '>' (a token id: <[123]>)");
      if (!Number.isSafeInteger(id) || id > 0x7fffffff) this.fail(p + 1, `token id ${s.slice(p + 1, end)} is too large`);
      return [id, end + 2];
    }
    while (p < s.length && s[p] !== '>') p++;
    if (s[p] !== '>') this.fail(i, "expecting '>' closing the token");
    const text = s.slice(i, p + 1);
    let k = this.tokenNames.indexOf(text);
    if (k < 0) k = this.tokenNames.push(text) - 1;
    return [-(k + 1), p + 1];
  }

  private alternates(i: number, ruleName: string, ruleId: number, nested: boolean): number {
    const rule: Element[] = [];
    let pos = this.sequence(i, ruleName, rule, nested);
    while (this.s[pos] === '|') {
      rule.push([ALT, 0]);
      pos = this.space(pos + 1, true);
      pos = this.sequence(pos, ruleName, rule, nested);
    }
    rule.push([END, 0]);
    this.addRule(ruleId, rule);
    return pos;
  }

  private sequence(i: number, ruleName: string, rule: Element[], nested: boolean): number {
    const s = this.s;
    let lastSymStart = rule.length;
    let pos = i;
    let nPrevRules = 1;

    // S{m,n} -> S S S (m times) S'(n-m), S'(x) ::= S S'(x-1) | ; S{m,} -> S..S S', S' ::= S S' |
    const repeat = (at: number, min: number, max: number) => {
      const noMax = max === UNBOUNDED;
      if (lastSymStart === rule.length) this.fail(at, 'expecting an item before */+/?/{');
      if (!noMax && max < min) this.fail(at, `repetition {${min},${max}} has its maximum below its minimum`);
      const prev = rule.slice(lastSymStart);
      let total = 1;
      if (!noMax && max > 0) total = max;
      else if (min > 0) total = min;
      if (nPrevRules * total >= MAX_REPETITION) {
        this.fail(at, `this repetition would expand to ${nPrevRules * total} rules (nested repetitions multiply; the limit is ${MAX_REPETITION}): use fewer repetitions`);
      }
      if (min === 0) rule.length = lastSymStart;
      else for (let k = 1; k < min; k++) rule.push(...prev);
      let lastRec = 0;
      const nOpt = noMax ? 1 : max - min;
      for (let k = 0; k < nOpt; k++) {
        const rec: Element[] = prev.map((e) => [e[0], e[1]]);
        const recId = this.generateSymbol(ruleName);
        if (k > 0 || noMax) rec.push([RULE_REF, noMax ? recId : lastRec]);
        rec.push([ALT, 0], [END, 0]);
        this.addRule(recId, rec);
        lastRec = recId;
      }
      if (nOpt > 0) rule.push([RULE_REF, lastRec]);
      nPrevRules *= total;
    };

    while (pos < s.length) {
      const c = s[pos];
      if (c === '"') {
        pos++;
        lastSymStart = rule.length;
        nPrevRules = 1;
        while (s[pos] !== '"') {
          if (pos >= s.length) this.fail(i, 'unterminated string literal: expecting a closing "');
          const [cp, next] = this.char(pos);
          pos = next;
          rule.push([CHAR, cp]);
        }
        pos = this.space(pos + 1, nested);
      } else if (c === '[') {
        const open = pos;
        pos++;
        let startType = CHAR;
        if (s[pos] === '^') {
          pos++;
          startType = CHAR_NOT;
        }
        lastSymStart = rule.length;
        nPrevRules = 1;
        while (s[pos] !== ']') {
          if (pos >= s.length) this.fail(open, "unterminated character class: expecting ']'");
          const [cp, next] = this.char(pos);
          pos = next;
          rule.push([lastSymStart < rule.length ? CHAR_ALT : startType, cp]);
          if (s[pos] === '-' && s[pos + 1] !== ']') {
            if (pos + 1 >= s.length) this.fail(open, "unterminated character class: expecting ']'");
            const [hi, next2] = this.char(pos + 1);
            pos = next2;
            rule.push([CHAR_RNG_UPPER, hi]);
          }
        }
        pos = this.space(pos + 1, nested);
      } else if (c === '<' || c === '!') {
        let type = TOKEN;
        if (c === '!') {
          type = TOKEN_NOT;
          pos++;
        }
        const [value, end] = this.token(pos);
        lastSymStart = rule.length;
        nPrevRules = 1;
        rule.push([type, value]);
        pos = this.space(end, nested);
      } else if (isWordChar(c)) {
        const end = this.name(pos);
        const id = this.symbol(s.slice(pos, end));
        if (!this.firstUse.has(id)) this.firstUse.set(id, pos);
        pos = this.space(end, nested);
        lastSymStart = rule.length;
        nPrevRules = 1;
        rule.push([RULE_REF, id]);
      } else if (c === '(') {
        const open = pos;
        pos = this.space(pos + 1, true);
        const before = this.symbolIds.size;
        const sub = this.generateSymbol(ruleName);
        pos = this.alternates(pos, ruleName, sub, true);
        nPrevRules = Math.max(1, this.symbolIds.size - before);
        lastSymStart = rule.length;
        rule.push([RULE_REF, sub]);
        if (s[pos] !== ')') this.fail(pos < s.length ? pos : open, `expecting ')' to close the group opened at ${this.where(open).replace(/ \(at .*$/, '')}`);
        pos = this.space(pos + 1, nested);
      } else if (c === '.') {
        lastSymStart = rule.length;
        nPrevRules = 1;
        rule.push([CHAR_ANY, 0]);
        pos = this.space(pos + 1, nested);
      } else if (c === '*' || c === '+' || c === '?') {
        const at = pos;
        pos = this.space(pos + 1, nested);
        if (c === '*') repeat(at, 0, UNBOUNDED);
        else if (c === '+') repeat(at, 1, UNBOUNDED);
        else repeat(at, 0, 1);
      } else if (c === '{') {
        const at = pos;
        pos = this.space(pos + 1, nested);
        if (!isDigit(s[pos])) this.fail(pos, "expecting an integer after '{'");
        let end = this.int(pos);
        const min = Number(s.slice(pos, end));
        pos = this.space(end, nested);
        let max = UNBOUNDED;
        if (s[pos] === '}') {
          max = min;
          pos = this.space(pos + 1, nested);
        } else if (s[pos] === ',') {
          pos = this.space(pos + 1, nested);
          if (isDigit(s[pos])) {
            end = this.int(pos);
            max = Number(s.slice(pos, end));
            pos = this.space(end, nested);
          }
          if (s[pos] !== '}') this.fail(pos, "expecting '}' closing the repetition");
          pos = this.space(pos + 1, nested);
        } else {
          this.fail(pos, "expecting ',' or '}' in the repetition");
        }
        if (min > MAX_REPETITION) this.fail(at, `repetition minimum ${min} exceeds the limit of ${MAX_REPETITION}`);
        // llama.cpp: a maximum above the limit means no maximum.
        if (max !== UNBOUNDED && max > MAX_REPETITION) max = UNBOUNDED;
        repeat(at, min, max);
      } else {
        break;
      }
    }
    return pos;
  }

  private rule(i: number): number {
    const s = this.s;
    const nameEnd = this.name(i);
    let pos = this.space(nameEnd, false);
    const name = s.slice(i, nameEnd);
    const id = this.symbol(name);
    if (!s.startsWith('::=', pos)) this.fail(pos, `expecting '::=' after the rule name '${name}'`);
    pos = this.space(pos + 3, true);
    pos = this.alternates(pos, name, id, false);
    if (s[pos] === '\r') pos += s[pos + 1] === '\n' ? 2 : 1;
    else if (s[pos] === '\n') pos++;
    else if (pos < s.length) this.fail(pos, `unexpected ${JSON.stringify(s[pos])}: expecting a newline or the end of rule '${name}'`);
    return this.space(pos, true);
  }
}
