// Checks a parsed grammar before it is used, so an impossible one fails up front
// with a UsageError instead of hanging or producing nothing:
//   - the start rule exists; `<text>` tokens resolve;
//   - no left recursion (llama.cpp's llama_grammar_detect_left_recursion, which
//     its matcher cannot run);
//   - the start rule can finish (some finite string matches). Alternatives that
//     can never finish (a rule that only recurses, an empty character class) are
//     dropped, so every state the matcher reaches can still be completed.
import { UsageError } from '../errors.ts';
import type { GrammarOptions } from './matcher.ts';
import { ALT, CHAR, CHAR_ALT, CHAR_ANY, CHAR_NOT, CHAR_RNG_UPPER, END, type Element, type ParsedGrammar, RULE_REF, TOKEN, TOKEN_NOT } from './parse.ts';

/** A readable name for a rule id: user rules by name, synthesized ones (`root_4`) as part of their rule. */
export function ruleLabel(parsed: ParsedGrammar, id: number): string {
  for (const [name, i] of parsed.symbolIds) {
    if (i !== id) continue;
    const m = /^(.*)_\d+$/.exec(name);
    return m ? `a group or repetition in rule '${m[1]}'` : `rule '${name}'`;
  }
  return `rule #${id}`;
}

const isEnd = (e: Element) => e[0] === END || e[0] === ALT;

/** The validated rules (tokens resolved, unfinishable alternatives dropped). Throws UsageError. */
export function checkGrammar(parsed: ParsedGrammar, opts: GrammarOptions): Element[][] {
  const rootName = opts.root ?? 'root';
  if (!parsed.symbolIds.has(rootName)) {
    throw new UsageError(`the grammar has no '${rootName}' rule: the start rule must be named ${rootName} (e.g. ${rootName} ::= "yes" | "no")`);
  }
  const rules: Element[][] = parsed.rules.map((r) => r.map((e) => {
    if ((e[0] === TOKEN || e[0] === TOKEN_NOT) && e[1] < 0) {
      const text = parsed.tokenNames[-e[1] - 1];
      if (!opts.resolveToken) return [e[0], e[1]];
      const id = opts.resolveToken(text);
      if (id === undefined) throw new UsageError(`grammar token ${text} is not a single token of this model's vocabulary: use <[id]> or a string literal`);
      return [e[0], id];
    }
    return [e[0], e[1]];
  }));

  // Left recursion (a port of llama_grammar_detect_left_recursion).
  const n = rules.length;
  const visited = new Uint8Array(n);
  const inProgress = new Uint8Array(n);
  const mayBeEmpty = new Uint8Array(n);
  let cycleAt = -1;
  const detect = (r: number): boolean => {
    if (inProgress[r]) {
      cycleAt = r;
      return true;
    }
    inProgress[r] = 1;
    const rule = rules[r];
    let atStart = true;
    for (const e of rule) {
      if (isEnd(e)) {
        if (atStart) { mayBeEmpty[r] = 1; break; }
        atStart = true;
      } else atStart = false;
    }
    let recurse = true;
    for (const e of rule) {
      if (e[0] === RULE_REF && recurse) {
        if (detect(e[1])) return true;
        if (!mayBeEmpty[e[1]]) recurse = false;
      } else if (isEnd(e)) recurse = true;
      else recurse = false;
    }
    inProgress[r] = 0;
    visited[r] = 1;
    return false;
  };
  for (let r = 0; r < n; r++) {
    if (visited[r]) continue;
    if (detect(r)) {
      throw new UsageError(`the grammar is left-recursive at ${ruleLabel(parsed, cycleAt)} (it can reach itself before matching any character), which GBNF matching cannot run: rewrite it with repetition, e.g. list ::= item ("," item)*`);
    }
  }

  // Which rules can finish, by fixpoint; then drop the alternatives that cannot.
  const productive = new Uint8Array(n);
  const classEmpty = (rule: Element[], i: number): boolean => {
    // Positive classes are empty only if every range is reversed; negated ones if they cover everything.
    const neg = rule[i][0] === CHAR_NOT;
    if (rule[i][0] === CHAR_ANY) return false;
    const ranges: [number, number][] = [];
    let q = i;
    do {
      if (rule[q + 1][0] === CHAR_RNG_UPPER) { ranges.push([rule[q][1], rule[q + 1][1]]); q += 2; }
      else { ranges.push([rule[q][1], rule[q][1]]); q += 1; }
    } while (rule[q][0] === CHAR_ALT);
    const real = ranges.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
    if (!neg) return real.length === 0;
    let next = 0;
    for (const [a, b] of real) {
      if (a > next) return false;
      next = Math.max(next, b + 1);
    }
    return next > 0x10ffff;
  };
  /** Alternatives of a rule as [start, end) element index ranges (end at the ALT/END). */
  const alternatives = (rule: Element[]): [number, number][] => {
    const out: [number, number][] = [];
    let s = 0;
    rule.forEach((e, i) => {
      if (isEnd(e)) { out.push([s, i]); s = i + 1; }
    });
    return out;
  };
  const altOk = (rule: Element[], [s, e]: [number, number]): boolean => {
    for (let i = s; i < e; i++) {
      const t = rule[i][0];
      if (t === RULE_REF && !productive[rule[i][1]]) return false;
      if ((t === CHAR || t === CHAR_NOT || t === CHAR_ANY) && classEmpty(rule, i)) return false;
    }
    return true;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let r = 0; r < n; r++) {
      if (productive[r]) continue;
      if (alternatives(rules[r]).some((a) => altOk(rules[r], a))) { productive[r] = 1; changed = true; }
    }
  }
  const root = parsed.symbolIds.get(rootName)!;
  if (!productive[root]) {
    throw new UsageError(`the grammar matches no string: every way through '${rootName}' reaches a rule that only recurses (never finishes) or an empty character class`);
  }
  return rules.map((rule) => {
    const alts = alternatives(rule);
    const keep = alts.filter((a) => altOk(rule, a));
    if (keep.length === alts.length || keep.length === 0) return rule;
    const out: Element[] = [];
    keep.forEach(([s, e], k) => {
      if (k > 0) out.push([ALT, 0]);
      for (let i = s; i < e; i++) out.push(rule[i]);
    });
    out.push([END, 0]);
    return out;
  });
}
