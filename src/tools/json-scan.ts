// A JSON scanner for text that is still being generated: it reads as far as the
// text goes and reports every value with its source span, whether it is complete,
// and (for strings) the characters decoded so far. Tool-call parsers use the spans
// to cut a call's arguments out of the model's text exactly as it wrote them, and
// the partial results to stream them before the call is finished.

export type JsonNode =
  | { kind: 'object'; start: number; end: number; complete: boolean; entries: JsonEntry[] }
  | { kind: 'array'; start: number; end: number; complete: boolean; items: JsonNode[] }
  | { kind: 'string'; start: number; end: number; complete: boolean; value: string }
  | { kind: 'literal'; start: number; end: number; complete: boolean };

export interface JsonEntry { key: string; keyComplete: boolean; value?: JsonNode }

export interface JsonScan {
  /** The value (partial when the text ended or broke off inside it); undefined if nothing was read. */
  node?: JsonNode;
  /** Index of the first character that cannot continue valid JSON, if any. */
  error?: number;
}

/** Nesting deeper than this is an error rather than a stack overflow. */
const MAX_DEPTH = 256;

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export function skipWs(text: string, i: number): number {
  while (i < text.length && isWs(text.charCodeAt(i))) i++;
  return i;
}

/** Scans one JSON value starting at `start` (after optional whitespace). */
export function scanJson(text: string, start: number): JsonScan {
  const sc = new Scanner(text);
  try {
    const node = sc.value(skipWs(text, start), 0);
    return { node, ...(sc.error !== undefined ? { error: sc.error } : {}) };
  } catch (e) {
    if (e instanceof Stop) return { node: e.partial, ...(sc.error !== undefined ? { error: sc.error } : {}) };
    throw e;
  }
}

/** Thrown to unwind when the text ends or breaks; carries the outermost partial value. */
class Stop {
  constructor(public partial: JsonNode | undefined) {}
}

const LITERALS = ['true', 'false', 'null'];
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Scanner {
  error: number | undefined;
  constructor(private readonly s: string) {}

  /** Ends the scan: `at` is an error position, or undefined when the text simply ran out. */
  private stop(at: number | undefined, partial: JsonNode | undefined): never {
    if (at !== undefined && this.error === undefined) this.error = at;
    throw new Stop(partial);
  }

  value(i: number, depth: number): JsonNode {
    const s = this.s;
    if (i >= s.length) this.stop(undefined, undefined);
    if (depth > MAX_DEPTH) this.stop(i, undefined);
    const c = s[i];
    if (c === '{') return this.object(i, depth);
    if (c === '[') return this.array(i, depth);
    if (c === '"') return this.string(i);
    if (c === '-' || (c >= '0' && c <= '9')) return this.number(i);
    for (const lit of LITERALS) {
      if (lit[0] !== c) continue;
      const have = s.slice(i, i + lit.length);
      if (have === lit) return { kind: 'literal', start: i, end: i + lit.length, complete: true };
      if (i + have.length === s.length && lit.startsWith(have)) this.stop(undefined, { kind: 'literal', start: i, end: s.length, complete: false });
      this.stop(i, undefined);
    }
    return this.stop(i, undefined);
  }

  /** Re-throws a child's Stop with the enclosing container as the partial value. */
  private child<T>(node: JsonNode, read: () => T, attach: (v: JsonNode | undefined) => void): T {
    try {
      return read();
    } catch (e) {
      if (e instanceof Stop) {
        attach(e.partial);
        node.end = e.partial ? e.partial.end : (this.error ?? this.s.length);
        throw new Stop(node);
      }
      throw e;
    }
  }

  private object(start: number, depth: number): JsonNode {
    const s = this.s;
    const node: JsonNode = { kind: 'object', start, end: s.length, complete: false, entries: [] };
    let i = skipWs(s, start + 1);
    if (i >= s.length) this.stop(undefined, node);
    if (s[i] === '}') return { ...node, end: i + 1, complete: true };
    for (;;) {
      if (i >= s.length) this.stop(undefined, node);
      if (s[i] !== '"') this.stop(i, node);
      const entry: JsonEntry = { key: '', keyComplete: false };
      node.entries.push(entry);
      const key = this.child(node, () => this.string(i), (k) => { if (k?.kind === 'string') entry.key = k.value; });
      entry.key = (key as { value: string }).value;
      entry.keyComplete = true;
      i = skipWs(s, key.end);
      if (i >= s.length) this.stop(undefined, node);
      if (s[i] !== ':') this.stop(i, node);
      i = skipWs(s, i + 1);
      if (i >= s.length) this.stop(undefined, node);
      const v = this.child(node, () => this.value(i, depth + 1), (p) => { entry.value = p; });
      entry.value = v;
      i = skipWs(s, v.end);
      if (i >= s.length) { node.end = s.length; this.stop(undefined, node); }
      if (s[i] === '}') { node.end = i + 1; node.complete = true; return node; }
      if (s[i] !== ',') { node.end = i; this.stop(i, node); }
      i = skipWs(s, i + 1);
    }
  }

  private array(start: number, depth: number): JsonNode {
    const s = this.s;
    const node: JsonNode = { kind: 'array', start, end: s.length, complete: false, items: [] };
    let i = skipWs(s, start + 1);
    if (i >= s.length) this.stop(undefined, node);
    if (s[i] === ']') return { ...node, end: i + 1, complete: true };
    for (;;) {
      const v = this.child(node, () => this.value(i, depth + 1), (p) => { if (p) node.items.push(p); });
      node.items.push(v);
      i = skipWs(s, v.end);
      if (i >= s.length) { node.end = s.length; this.stop(undefined, node); }
      if (s[i] === ']') { node.end = i + 1; node.complete = true; return node; }
      if (s[i] !== ',') { node.end = i; this.stop(i, node); }
      i = skipWs(s, i + 1);
      if (i >= s.length) { node.end = s.length; this.stop(undefined, node); }
    }
  }

  private string(start: number): JsonNode {
    const s = this.s;
    let value = '';
    let i = start + 1;
    let run = i;
    const partial = (end: number): JsonNode => ({ kind: 'string', start, end, complete: false, value: value + s.slice(run, end) });
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 0x22) return { kind: 'string', start, end: i + 1, complete: true, value: value + s.slice(run, i) };
      if (c < 0x20) this.stop(i, partial(i));
      if (c !== 0x5c) { i++; continue; }
      value += s.slice(run, i);
      const e = s[i + 1];
      // An escape cut off by the end of the text is not decoded yet.
      if (e === undefined) this.stop(undefined, { kind: 'string', start, end: s.length, complete: false, value });
      if (e === 'u') {
        const hex = s.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]*$/.test(hex)) this.stop(i, { kind: 'string', start, end: i, complete: false, value });
        if (hex.length < 4) this.stop(undefined, { kind: 'string', start, end: s.length, complete: false, value });
        value += String.fromCharCode(Number.parseInt(hex, 16));
        i += 6;
      } else if (e in ESCAPES) {
        value += ESCAPES[e];
        i += 2;
      } else this.stop(i, { kind: 'string', start, end: i, complete: false, value });
      run = i;
    }
    return this.stop(undefined, partial(s.length));
  }

  private number(start: number): JsonNode {
    const s = this.s;
    const m = /^-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]*)?/.exec(s.slice(start, start + 400));
    const text = m ? m[0] : '';
    const end = start + text.length;
    // At the end of the text a number may still grow ("1" → "12").
    if (end >= s.length) this.stop(undefined, { kind: 'literal', start, end, complete: false });
    if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text)) this.stop(end, undefined);
    return { kind: 'literal', start, end, complete: true };
  }
}

/** The entry `key` of an object node (the first one, as a parser reading left to right sees it). */
export function entryOf(node: JsonNode | undefined, key: string): JsonEntry | undefined {
  return node?.kind === 'object' ? node.entries.find((e) => e.keyComplete && e.key === key) : undefined;
}
