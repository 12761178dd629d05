// A JSON Schema `pattern` (ECMA-262 regex syntax) -> a GBNF expression for the
// *JSON-escaped* content of a string: the grammar spells each character as JSON
// writes it inside quotes (`"` as \", a newline as \n, controls as \u00XX), so the
// decoded string matches the pattern. Unanchored patterns match anywhere (JSON
// Schema semantics): `[0-9]+` becomes `char* ([0-9]+) char*`.
//
// Supported: literals and escapes (\d \w \s and negations, \t \n \r \f \v \0 \xHH
// \uHHHH \u{…} \cX, escaped punctuation), `.`, classes with ranges and negation,
// groups ( ) (?: ) (?<name> ), alternation, * + ? {n} {n,} {n,m} (lazy forms
// too: same language), ^ and $ at the ends of top-level alternatives. Refused with
// a UsageError: lookarounds, backreferences, \b \B, \p{…}, anchors elsewhere.
import { UsageError } from '../errors.ts';

type Ranges = [number, number][];
type Node =
  | { t: 'set'; r: Ranges }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'rep'; item: Node; min: number; max: number }
  | { t: 'bol' }
  | { t: 'eol' };

const MAX_CP = 0x10ffff;
/** Largest count a repetition may have in GBNF (llama.cpp refuses 2000 and above). */
export const MAX_COUNT = 1999;

const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: Ranges = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const DOT: Ranges = [[0, 0x09], [0x0b, 0x0c], [0x0e, 0x2027], [0x202a, MAX_CP]];

function normalize(r: Ranges): Ranges {
  const s = r.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: Ranges = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function complement(r: Ranges): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (const [a, b] of normalize(r)) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

class RegexParser {
  i = 0;
  constructor(readonly src: string, readonly fail: (why: string, unsupported: boolean) => never) {}

  parse(): Node {
    const n = this.alternation();
    if (this.i < this.src.length) this.fail(`unbalanced ')' at ${this.i}`, false);
    return n;
  }

  private alternation(): Node {
    const items = [this.sequence()];
    while (this.src[this.i] === '|') {
      this.i++;
      items.push(this.sequence());
    }
    return items.length === 1 ? items[0] : { t: 'alt', items };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return { t: 'seq', items };
  }

  private quantified(atom: Node): Node {
    const s = this.src;
    let min: number;
    let max: number;
    const c = s[this.i];
    if (c === '*') { min = 0; max = Number.POSITIVE_INFINITY; this.i++; }
    else if (c === '+') { min = 1; max = Number.POSITIVE_INFINITY; this.i++; }
    else if (c === '?') { min = 0; max = 1; this.i++; }
    else if (c === '{' && /^\{\d+(,\d*)?\}/.test(s.slice(this.i))) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(this.i))!;
      this.i += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
      if (max < min) this.fail(`{${min},${max}} has its maximum below its minimum`, false);
    } else return atom;
    if (s[this.i] === '?') this.i++; // lazy: the same language
    if (atom.t === 'bol' || atom.t === 'eol') this.fail('nothing to repeat before a quantifier', false);
    return { t: 'rep', item: atom, min, max };
  }

  private atom(): Node {
    const s = this.src;
    const c = s[this.i];
    if (c === '(') {
      this.i++;
      if (s[this.i] === '?') {
        if (s[this.i + 1] === ':') this.i += 2;
        else if (s[this.i + 1] === '<' && s[this.i + 2] !== '=' && s[this.i + 2] !== '!') {
          const close = s.indexOf('>', this.i);
          if (close < 0) this.fail('unterminated group name', false);
          this.i = close + 1;
        } else this.fail('lookarounds ((?=, (?!, (?<=, (?<!) cannot be expressed in a grammar', true);
      }
      const inner = this.alternation();
      if (s[this.i] !== ')') this.fail('unbalanced parentheses', false);
      this.i++;
      return inner;
    }
    if (c === '[') return { t: 'set', r: this.klass() };
    if (c === '.') { this.i++; return { t: 'set', r: DOT }; }
    if (c === '^') { this.i++; return { t: 'bol' }; }
    if (c === '$') { this.i++; return { t: 'eol' }; }
    if (c === '*' || c === '+' || c === '?') this.fail(`nothing to repeat before '${c}'`, false);
    if (c === '\\') return { t: 'set', r: this.escape(false) };
    const cp = s.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return { t: 'set', r: [[cp, cp]] };
  }

  /** After '\\': a class of code points. In a class, \b is a backspace. */
  private escape(inClass: boolean): Ranges {
    const s = this.src;
    this.i++;
    if (this.i >= s.length) this.fail('trailing backslash', false);
    const c = s[this.i++];
    const one = (cp: number): Ranges => [[cp, cp]];
    switch (c) {
      case 'd': return DIGIT;
      case 'D': return complement(DIGIT);
      case 'w': return WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
      case 't': return one(9);
      case 'n': return one(10);
      case 'v': return one(11);
      case 'f': return one(12);
      case 'r': return one(13);
      case '0': return one(0);
      case 'b':
        if (inClass) return one(8);
        return this.fail('word boundaries (\\b) cannot be expressed in a grammar', true);
      case 'B': return this.fail('word boundaries (\\B) cannot be expressed in a grammar', true);
      case 'c': {
        const l = s[this.i++];
        if (!l || !/[A-Za-z]/.test(l)) this.fail('\\c must be followed by a letter', false);
        return one(l.charCodeAt(0) % 32);
      }
      case 'x': {
        const h = s.slice(this.i, this.i + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) this.fail('\\x needs 2 hex digits', false);
        this.i += 2;
        return one(Number.parseInt(h, 16));
      }
      case 'u': {
        const m = /^\{([0-9a-fA-F]{1,6})\}/.exec(s.slice(this.i)) ?? /^()([0-9a-fA-F]{4})/.exec(s.slice(this.i));
        if (!m) this.fail('\\u needs 4 hex digits (or {…})', false);
        this.i += m[0].length;
        const cp = Number.parseInt(m[1] || m[2], 16);
        if (cp > MAX_CP) this.fail('\\u{…} is beyond U+10FFFF', false);
        return one(cp);
      }
      case 'p': case 'P': return this.fail('Unicode property classes (\\p{…}) are not supported', true);
      case 'k': return this.fail('named backreferences cannot be expressed in a grammar', true);
      default:
        if (c >= '1' && c <= '9') return this.fail('backreferences cannot be expressed in a grammar', true);
        return one(c.codePointAt(0)!);
    }
  }

  private klass(): Ranges {
    const s = this.src;
    const open = this.i;
    this.i++;
    let neg = false;
    if (s[this.i] === '^') { neg = true; this.i++; }
    const out: Ranges = [];
    const item = (): Ranges => {
      if (s[this.i] === '\\') return this.escape(true);
      const cp = s.codePointAt(this.i)!;
      this.i += cp > 0xffff ? 2 : 1;
      return [[cp, cp]];
    };
    while (s[this.i] !== ']') {
      if (this.i >= s.length) this.fail(`unterminated character class at ${open}`, false);
      const a = item();
      if (s[this.i] === '-' && s[this.i + 1] !== ']' && this.i + 1 < s.length) {
        this.i++;
        const b = item();
        if (a.length !== 1 || b.length !== 1 || a[0][0] !== a[0][1] || b[0][0] !== b[0][1]) this.fail('a range cannot use a class like \\d as an end', false);
        if (b[0][0] < a[0][0]) this.fail('a character range is out of order', false);
        out.push([a[0][0], b[0][0]]);
      } else out.push(...a);
    }
    this.i++;
    return neg ? complement(out) : normalize(out);
  }
}

const JSON_SHORT: Record<number, string> = { 8: 'b', 9: 't', 10: 'n', 12: 'f', 13: 'r' };
const hex = (cp: number, n: number) => cp.toString(16).padStart(n, '0');

/** One code point in a GBNF literal ("…") or class ([…]): printable ASCII raw unless special there, the rest escaped. */
function gbnfChar(cp: number, inClass: boolean): string {
  if (cp >= 0x20 && cp <= 0x7e) {
    const c = String.fromCharCode(cp);
    if (c === '\\' || c === '"' || (inClass && (c === ']' || c === '-' || c === '^' || c === '['))) return `\\${c === '^' ? 'x5e' : c}`;
    return c;
  }
  if (!inClass && cp > 0x7f && cp <= 0xffff && !(cp >= 0xd800 && cp <= 0xdfff)) return String.fromCodePoint(cp);
  if (cp > 0xffff) return `\\U${hex(cp, 8)}`;
  return cp > 0xff ? `\\u${hex(cp, 4)}` : `\\x${hex(cp, 2)}`;
}

/** Nibbles as a class of hex digits, both letter cases. */
const nibbles = (ns: number[]) => `[${ns.map((n) => (n < 10 ? String(n) : `${n.toString(16)}${n.toString(16).toUpperCase()}`)).join('')}]`;

/**
 * A set of code points as GBNF matching their JSON-escaped spelling: printable
 * characters as themselves, " and \ as \" and \\, controls and DEL as \u00XX (and
 * \b \t \n \f \r).
 * Empty sets fail.
 */
export function jsonCharSet(r: Ranges, fail: (why: string) => never): string {
  const set = normalize(r);
  const has = (cp: number) => set.some(([a, b]) => a <= cp && cp <= b);
  const plain: Ranges = [];
  for (const [a, b] of set) {
    for (const [x, y] of [[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7e], [0x80, 0xd7ff], [0xe000, MAX_CP]]) {
      const lo = Math.max(a, x);
      const hi = Math.min(b, y);
      if (lo <= hi) plain.push([lo, hi]);
    }
  }
  const parts: string[] = [];
  if (plain.length === 1 && plain[0][0] === plain[0][1]) parts.push(`"${gbnfChar(plain[0][0], false)}"`);
  else if (plain.length > 0) parts.push(`[${plain.map(([a, b]) => (a === b ? gbnfChar(a, true) : `${gbnfChar(a, true)}-${gbnfChar(b, true)}`)).join('')}]`);
  if (has(0x22)) parts.push('"\\\\\\""');
  if (has(0x5c)) parts.push('"\\\\\\\\"');
  const short = Object.keys(JSON_SHORT).map(Number).filter(has);
  if (short.length > 0) parts.push(`"\\\\" [${short.map((c) => JSON_SHORT[c]).join('')}]`);
  for (const high of [0, 1]) {
    const lows = [...Array(16).keys()].filter((n) => has(high * 16 + n));
    if (lows.length === 1) parts.push(`"\\\\u00${high}${lows[0].toString(16)}"`);
    else if (lows.length > 1) parts.push(`"\\\\u00${high}" ${nibbles(lows)}`);
  }
  if (has(0x7f)) parts.push('"\\\\u007f"');
  if (parts.length === 0) fail('a character class matches no character');
  return parts.length === 1 ? parts[0] : `(${parts.join(' | ')})`;
}

/**
 * The GBNF for a string's escaped content matching `pattern`. `anyChar` is the rule
 * name for one JSON string character (for unanchored ends). Throws UsageError.
 */
export function patternToGbnf(pattern: string, anyChar: () => string, where: string): string {
  const fail = (why: string, unsupported: boolean): never => {
    throw new UsageError(`JSON schema ${where}: pattern ${JSON.stringify(pattern)} ${unsupported ? 'is not supported' : 'is invalid'}: ${why}`);
  };
  const tree = new RegexParser(pattern, fail).parse();
  const setFail = (why: string) => fail(why, false);

  const emit = (n: Node): string => {
    switch (n.t) {
      case 'set': return jsonCharSet(n.r, setFail);
      case 'bol': case 'eol': return fail('^ and $ are supported only at the start and end of the pattern', true);
      case 'alt': return `(${n.items.map(emit).join(' | ')})`;
      case 'rep': {
        if (n.min > MAX_COUNT) fail(`a repetition of at least ${n.min} exceeds the grammar's limit of ${MAX_COUNT}`, true);
        const max = n.max === Number.POSITIVE_INFINITY ? n.max : Math.min(n.max, MAX_COUNT); // a tighter bound: still only matching strings
        const inner = emit(n.item);
        const item = /^("[^"]*"|\[[^\]]*\]|\([^()]*\))$/.test(inner) ? inner : `(${inner})`;
        if (n.min === 0 && max === Number.POSITIVE_INFINITY) return `${item}*`;
        if (n.min === 1 && max === Number.POSITIVE_INFINITY) return `${item}+`;
        if (n.min === 0 && max === 1) return `${item}?`;
        if (max === 0) return '""';
        return `${item}{${n.min},${max === Number.POSITIVE_INFINITY ? '' : max}}`;
      }
      case 'seq': {
        if (n.items.length === 0) return '""';
        // Runs of single printable characters read as one literal: "abc".
        const out: string[] = [];
        let lit = '';
        for (const x of n.items) {
          const cp = x.t === 'set' && x.r.length === 1 && x.r[0][0] === x.r[0][1] ? x.r[0][0] : -1;
          if (cp >= 0x20 && cp !== 0x22 && cp !== 0x5c && cp !== 0x7f && !(cp >= 0xd800 && cp <= 0xdfff)) lit += gbnfChar(cp, false);
          else {
            if (lit) out.push(`"${lit}"`);
            lit = '';
            out.push(emit(x));
          }
        }
        if (lit) out.push(`"${lit}"`);
        return out.join(' ');
      }
    }
  };

  // Anchors: only leading ^ / trailing $ of each top-level alternative.
  const alts = tree.t === 'alt' ? tree.items : [tree];
  const out = alts.map((a) => {
    const items = a.t === 'seq' ? [...a.items] : [a];
    let start = false;
    let end = false;
    while (items[0]?.t === 'bol') { items.shift(); start = true; }
    while (items[items.length - 1]?.t === 'eol') { items.pop(); end = true; }
    const body = emit({ t: 'seq', items });
    if (start && end) return alts.length === 1 ? body : `(${body})`;
    const any = `${anyChar()}*`;
    return [start ? '' : any, `(${body})`, end ? '' : any].filter(Boolean).join(' ');
  });
  return out.join(' | ');
}
