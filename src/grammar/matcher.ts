// The grammar as a pushdown matcher over code points: llama.cpp's stacks
// (llama_grammar_advance_stack / accept / match_char / match_partial_char), with
// every stack and every set of stacks interned, so a state is one object and its
// transitions are cached on it. The token-level mask (constraint.ts) walks a trie
// of the vocabulary through these cached transitions.
//
// Shapes: a Stack is a persistent list of element positions (top = `pos`, the rest
// = `parent`, the empty stack = `Grammar.empty`); a StateSet is the sorted, unique set
// of stacks the grammar can be in, each topped by a terminal (char class or token)
// or empty (= the input so far is complete). A partial UTF-8 character between
// tokens is (value, rem, len): the bits so far, bytes still to come, total length.
import { ALT, CHAR, CHAR_ALT, CHAR_ANY, CHAR_NOT, CHAR_RNG_UPPER, END, type ParsedGrammar, RULE_REF, TOKEN, TOKEN_NOT } from './parse.ts';
import { checkGrammar } from './validate.ts';

export class Stack {
  kids: Map<number, Stack> | undefined;
  /** The stacks this one expands to (all topped by a terminal, or empty); cached. */
  adv: Stack[] | undefined;
  mark = 0;
  constructor(readonly pos: number, readonly parent: Stack | undefined, readonly id: number) {}
}

export class StateSet {
  /** Transitions on a code point, cached: ASCII in an array, the rest in a map. */
  readonly ascii: (StateSet | undefined)[] = new Array(128);
  other: Map<number, StateSet> | undefined;
  /** Transitions by which char stacks accept the code point ('0'/'1' per stack). */
  bySignature: Map<string, StateSet> | undefined;
  partialOk: Map<number, boolean> | undefined;
  /** Set by the vocabulary binding (constraint.ts): the allowed-token bitset at this state. */
  mask: Uint32Array | undefined;
  /** The input so far is a complete match (an empty stack is in the set). */
  readonly complete: boolean;
  /** Complete, and nothing else can follow. */
  readonly final: boolean;
  readonly charStacks: Stack[] = [];
  readonly tokenStacks: Stack[] = [];
  constructor(readonly stacks: readonly Stack[], g: Grammar) {
    let complete = false;
    for (const s of stacks) {
      if (s === g.empty) complete = true;
      else if (g.types[s.pos] === TOKEN || g.types[s.pos] === TOKEN_NOT) this.tokenStacks.push(s);
      else this.charStacks.push(s);
    }
    this.complete = complete;
    this.final = complete && stacks.length === 1;
  }
  get dead(): boolean {
    return this.stacks.length === 0;
  }
}

export interface GrammarOptions {
  /** The start rule. Default 'root'. */
  root?: string;
  /** Resolves a `<text>` token to its id; undefined = not in the vocabulary. */
  resolveToken?: (text: string) => number | undefined;
}

/** Smallest code point for a UTF-8 length (overlong forms are invalid). */
const MIN_CP = [0, 0, 0x80, 0x800, 0x10000];

export class Grammar {
  readonly types: Uint8Array;
  readonly values: Int32Array;
  readonly ruleStart: Int32Array;
  readonly hasTokens: boolean;
  readonly empty = new Stack(-1, undefined, 0);
  readonly dead: StateSet;
  readonly start: StateSet;
  /** Per char-class start position: sorted, merged [lo, hi] ranges, negation, and the position after the class. */
  private readonly clsLo: Int32Array[] = [];
  private readonly clsHi: Int32Array[] = [];
  private readonly clsNeg: Uint8Array;
  private readonly clsAfter: Int32Array;
  private nextId = 1;
  private epoch = 0;
  private readonly sets = new Map<string, StateSet>();

  constructor(parsed: ParsedGrammar, opts: GrammarOptions = {}) {
    const rules = checkGrammar(parsed, opts);
    let n = 0;
    for (const r of rules) n += r.length;
    this.types = new Uint8Array(n);
    this.values = new Int32Array(n);
    this.ruleStart = new Int32Array(rules.length);
    let k = 0;
    let hasTokens = false;
    rules.forEach((r, id) => {
      this.ruleStart[id] = k;
      for (const [t, v] of r) {
        this.types[k] = t;
        this.values[k] = v;
        if (t === TOKEN || t === TOKEN_NOT) hasTokens = true;
        k++;
      }
    });
    this.hasTokens = hasTokens;
    this.clsNeg = new Uint8Array(n);
    this.clsAfter = new Int32Array(n);
    for (let p = 0; p < n; p++) {
      const t = this.types[p];
      if (t === CHAR || t === CHAR_NOT || t === CHAR_ANY) this.compileClass(p);
    }
    this.dead = new StateSet([], this);
    this.sets.set('', this.dead);
    const root = parsed.symbolIds.get(opts.root ?? 'root')!;
    // One stack per alternative of the start rule (llama_grammar_init_impl).
    const initial: Stack[] = [];
    const epoch = ++this.epoch;
    for (let p = this.ruleStart[root]; ; p++) {
      const s = this.types[p] === END || this.types[p] === ALT ? this.empty : this.push(this.empty, p);
      for (const t of this.advance(s)) if (t.mark !== epoch) { t.mark = epoch; initial.push(t); }
      while (this.types[p] !== END && this.types[p] !== ALT) p++;
      if (this.types[p] === END) break;
    }
    this.start = this.intern(initial);
  }

  private compileClass(p: number): void {
    const { types, values } = this;
    const ranges: [number, number][] = [];
    let q = p;
    let any = false;
    do {
      if (types[q + 1] === CHAR_RNG_UPPER) {
        if (values[q] <= values[q + 1]) ranges.push([values[q], values[q + 1]]);
        q += 2;
      } else if (types[q] === CHAR_ANY) {
        any = true;
        q += 1;
      } else {
        ranges.push([values[q], values[q]]);
        q += 1;
      }
    } while (types[q] === CHAR_ALT);
    if (any) ranges.splice(0, ranges.length, [0, 0x10ffff]);
    ranges.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    this.clsLo[p] = Int32Array.from(merged, (r) => r[0]);
    this.clsHi[p] = Int32Array.from(merged, (r) => r[1]);
    this.clsNeg[p] = types[p] === CHAR_NOT ? 1 : 0;
    this.clsAfter[p] = q;
  }

  /** Does the class at p accept code point cp (llama_grammar_match_char)? */
  matchChar(p: number, cp: number): boolean {
    const lo = this.clsLo[p];
    const hi = this.clsHi[p];
    let found = false;
    for (let i = 0; i < lo.length; i++) {
      if (cp < lo[i]) break;
      if (cp <= hi[i]) { found = true; break; }
    }
    return found !== (this.clsNeg[p] === 1);
  }

  /**
   * Could some completion of a partial UTF-8 character be accepted by the class at p
   * (llama_grammar_match_partial_char)? The range of completions excludes overlong
   * forms, surrogates and code points past U+10FFFF, and a negated class rejects it
   * only when it covers the whole range.
   */
  matchPartial(p: number, value: number, rem: number, len: number): boolean {
    let low = value * 2 ** (6 * rem);
    let high = low + 2 ** (6 * rem) - 1;
    low = Math.max(low, MIN_CP[len]);
    high = Math.min(high, 0x10ffff);
    if (len === 3 && low === 0xd000 && high === 0xdfff) high = 0xd7ff;
    if (low > high) return false;
    const lo = this.clsLo[p];
    const hi = this.clsHi[p];
    if (this.clsNeg[p] === 0) {
      for (let i = 0; i < lo.length; i++) if (lo[i] <= high && low <= hi[i]) return true;
      return false;
    }
    // Negated: accepted unless the ranges cover [low, high] entirely.
    let next = low;
    for (let i = 0; i < lo.length && next <= high; i++) {
      if (hi[i] < next) continue;
      if (lo[i] > next) return true;
      next = hi[i] + 1;
    }
    return next <= high;
  }

  private isEndOfSequence(p: number): boolean {
    const t = this.types[p];
    return t === END || t === ALT;
  }

  push(parent: Stack, pos: number): Stack {
    let kids = parent.kids;
    if (!kids) kids = parent.kids = new Map();
    let s = kids.get(pos);
    if (!s) {
      s = new Stack(pos, parent, this.nextId++);
      kids.set(pos, s);
    }
    return s;
  }

  /** llama_grammar_advance_stack: expand rule references until every stack is topped by a terminal or empty. */
  advance(stack: Stack): Stack[] {
    if (stack.adv) return stack.adv;
    const out: Stack[] = [];
    const seen = new Set<Stack>();
    const todo = [stack];
    while (todo.length > 0) {
      const cur = todo.pop()!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      if (cur === this.empty) {
        out.push(cur);
        continue;
      }
      const t = this.types[cur.pos];
      if (t === RULE_REF) {
        let sub = this.ruleStart[this.values[cur.pos]];
        for (;;) {
          let next = cur.parent!;
          if (!this.isEndOfSequence(cur.pos + 1)) next = this.push(next, cur.pos + 1);
          if (!this.isEndOfSequence(sub)) next = this.push(next, sub);
          todo.push(next);
          while (!this.isEndOfSequence(sub)) sub++;
          if (this.types[sub] !== ALT) break;
          sub++;
        }
      } else if (t === CHAR || t === CHAR_NOT || t === CHAR_ANY || t === TOKEN || t === TOKEN_NOT) {
        out.push(cur);
      } else {
        throw new Error(`grammar stack left on element type ${t} at ${cur.pos}`);
      }
    }
    stack.adv = out;
    return out;
  }

  /** The interned set of these stacks (any order, duplicates allowed). */
  intern(stacks: Stack[]): StateSet {
    if (stacks.length === 0) return this.dead;
    const sorted = stacks.length > 1 ? stacks.slice().sort((a, b) => a.id - b.id) : stacks;
    const unique: Stack[] = [];
    let key = '';
    for (const s of sorted) {
      if (unique.length > 0 && unique[unique.length - 1] === s) continue;
      unique.push(s);
      key += `${s.id},`;
    }
    const hit = this.sets.get(key);
    if (hit) return hit;
    const set = new StateSet(unique, this);
    this.sets.set(key, set);
    return set;
  }

  /**
   * The state after code point cp (llama_grammar_accept); cached on the state. The
   * result depends only on which stacks accept cp, so code points with the same
   * pattern of matches share one computation (a vocabulary has thousands of
   * distinct characters, but a state tells apart only a few kinds).
   */
  step(set: StateSet, cp: number): StateSet {
    const cached = cp < 128 ? set.ascii[cp] : set.other?.get(cp);
    if (cached) return cached;
    const stacks = set.charStacks;
    let sig = '';
    for (let i = 0; i < stacks.length; i++) sig += this.matchChar(stacks[i].pos, cp) ? '1' : '0';
    let next = set.bySignature?.get(sig);
    if (!next) {
      const epoch = ++this.epoch;
      const out: Stack[] = [];
      for (let i = 0; i < stacks.length; i++) {
        if (sig.charCodeAt(i) !== 49) continue;
        const s = stacks[i];
        let base = s.parent!;
        const after = this.clsAfter[s.pos];
        if (!this.isEndOfSequence(after)) base = this.push(base, after);
        for (const t of this.advance(base)) if (t.mark !== epoch) { t.mark = epoch; out.push(t); }
      }
      next = this.intern(out);
      set.bySignature ??= new Map();
      set.bySignature.set(sig, next);
    }
    if (cp < 128) set.ascii[cp] = next;
    else {
      set.other ??= new Map();
      set.other.set(cp, next);
    }
    return next;
  }

  /** Can some stack of `set` take a character that completes this partial UTF-8 sequence? Cached. */
  partialOk(set: StateSet, value: number, rem: number, len: number): boolean {
    const key = value * 32 + rem * 8 + len;
    const cached = set.partialOk?.get(key);
    if (cached !== undefined) return cached;
    let ok = false;
    for (const s of set.charStacks) {
      if (this.matchPartial(s.pos, value, rem, len)) { ok = true; break; }
    }
    set.partialOk ??= new Map();
    set.partialOk.set(key, ok);
    return ok;
  }

  /** The state after a whole token matched by id (TOKEN / TOKEN_NOT elements only). */
  stepToken(set: StateSet, id: number): StateSet {
    if (set.tokenStacks.length === 0) return this.dead;
    const epoch = ++this.epoch;
    const out: Stack[] = [];
    for (const s of set.tokenStacks) {
      const v = this.values[s.pos];
      if ((this.types[s.pos] === TOKEN) !== (v === id)) continue;
      let base = s.parent!;
      if (!this.isEndOfSequence(s.pos + 1)) base = this.push(base, s.pos + 1);
      for (const t of this.advance(base)) if (t.mark !== epoch) { t.mark = epoch; out.push(t); }
    }
    return this.intern(out);
  }

  /** Union of two states. */
  union(a: StateSet, b: StateSet): StateSet {
    if (a.dead) return b;
    if (b.dead || a === b) return a;
    return this.intern([...a.stacks, ...b.stacks]);
  }
}

/** Where a token or string leaves the grammar: the state and a pending partial UTF-8 character. */
export interface Cursor {
  set: StateSet;
  /** Partial character: bits so far, bytes still to come (0 = none), total length. */
  value: number;
  rem: number;
  len: number;
}

/**
 * Feeds bytes (UTF-8, possibly starting inside the cursor's partial character and
 * ending inside another) through the grammar. Invalid UTF-8 (stray continuation
 * bytes, overlong forms, surrogates, > U+10FFFF) is rejected. Returns null when
 * the grammar rejects the bytes.
 */
export function feedBytes(g: Grammar, c: Cursor, bytes: Uint8Array): Cursor | null {
  let { set, value, rem, len } = c;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (rem === 0) {
      if (b < 0x80) {
        set = g.step(set, b);
        if (set.dead) return null;
        continue;
      }
      if (b >= 0xc2 && b <= 0xdf) { value = b & 0x1f; rem = 1; len = 2; }
      else if (b >= 0xe0 && b <= 0xef) { value = b & 0x0f; rem = 2; len = 3; }
      else if (b >= 0xf0 && b <= 0xf4) { value = b & 0x07; rem = 3; len = 4; }
      else return null;
    } else {
      if (!continuationOk(b, value, rem, len)) return null;
      value = value * 64 + (b & 0x3f);
      rem--;
      if (rem === 0) {
        set = g.step(set, value);
        if (set.dead) return null;
        value = 0;
        len = 0;
      }
    }
  }
  if (rem > 0 && !g.partialOk(set, value, rem, len)) return null;
  return { set, value, rem, len };
}

/** Is b a valid next byte of the partial character (value, rem, len)? The second byte after E0/ED/F0/F4 is narrower. */
export function continuationOk(b: number, value: number, rem: number, len: number): boolean {
  if ((b & 0xc0) !== 0x80) return false;
  if (rem === len - 1) {
    if (len === 3 && value === 0) return b >= 0xa0; // E0: no overlong
    if (len === 3 && value === 0xd) return b <= 0x9f; // ED: no surrogates
    if (len === 4 && value === 0) return b >= 0x90; // F0: no overlong
    if (len === 4 && value === 4) return b <= 0x8f; // F4: <= U+10FFFF
  }
  return true;
}

/** A fresh cursor at the grammar's start. */
export function startCursor(g: Grammar): Cursor {
  return { set: g.start, value: 0, rem: 0, len: 0 };
}

/**
 * Accepts one token the way llama_grammar_accept_token does: stacks topped by a
 * token element match its id, the others its bytes. Null when nothing matches.
 */
export function feedToken(g: Grammar, c: Cursor, id: number, bytes: Uint8Array | undefined): Cursor | null {
  const byChars = bytes && bytes.length > 0 ? feedBytes(g, c, bytes) : null;
  if (!g.hasTokens || c.rem > 0) return byChars;
  const byId = g.stepToken(c.set, id);
  if (byId.dead) return byChars;
  if (!byChars) return { set: byId, value: 0, rem: 0, len: 0 };
  return { ...byChars, set: g.union(byChars.set, byId) };
}

/** Helper for tests and callers: does the grammar match this whole string? */
export function matchesString(g: Grammar, text: string): boolean {
  const c = feedBytes(g, startCursor(g), new TextEncoder().encode(text));
  return c !== null && c.rem === 0 && c.set.complete;
}
