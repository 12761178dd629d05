// The model's reply → text and tool calls, per format (format.ts). One parser for
// the whole reply and for a reply still streaming (`partial`): a partial parse
// holds back any text that may yet become part of a call (a marker's first
// characters, trailing whitespace, a call whose name is not known yet), so that
// each partial result is a prefix of the next and of the final one.
//
// A call counts once its name (a declared tool's) and the start of its arguments
// are read. Its `arguments` are the JSON text exactly as the model wrote it; if
// that JSON breaks off or goes wrong, the raw text up to the call's end marker
// (or the end of the reply) is kept, as OpenAI keeps arguments that do not parse.
//
// Harmony (gpt-oss) calls are messages rather than markup in the text (harmony.ts);
// there a call counts once its header, which names the function, is read.
import type { ToolFormat } from './format.ts';
import { harmonyCalls } from './harmony.ts';
import { entryOf, type JsonNode, scanJson, skipWs } from './json-scan.ts';

export interface ParsedCall {
  name: string;
  /** The id the model wrote (Mistral), if any. */
  id?: string;
  /** JSON text of the arguments as written. */
  arguments: string;
  /** Whether `arguments` is one complete JSON value. */
  done: boolean;
}

export interface ParsedOutput {
  /** The reply's text outside the calls (whitespace next to a call dropped). */
  content: string;
  calls: ParsedCall[];
}

export interface ParseOptions {
  format: ToolFormat;
  /** Declared tool names: a call to any other name is text. */
  names: ReadonlySet<string>;
  /** The reply may continue: hold back what is not decided yet. */
  partial: boolean;
}

export function parseToolOutput(text: string, o: ParseOptions): ParsedOutput {
  const out = new Out(o.partial);
  switch (o.format) {
    case 'hermes': tagged(text, o, out); break;
    case 'llama3': llama3(text, o, out); break;
    case 'mistral': case 'granite': case 'mistral-args': marked(text, o, out); break;
    case 'generic': generic(text, o, out); break;
    case 'harmony': harmonyCalls(text, o, out); break;
  }
  return out.result();
}

/** Collects text and calls; text beside a call loses its adjoining whitespace. */
class Out {
  private content = '';
  readonly calls: ParsedCall[] = [];
  private afterCall = false;
  private held = false;

  constructor(private readonly partial: boolean) {}

  text(s: string): void {
    if (this.held) return;
    this.content += this.afterCall ? s.trimStart() : s;
    if (this.afterCall && s.trim() !== '') this.afterCall = false;
  }

  call(c: ParsedCall): void {
    if (this.held) return;
    this.content = this.content.trimEnd();
    this.calls.push(c);
    this.afterCall = true;
  }

  /** Streaming: the rest is undecided; nothing after this point counts yet. */
  hold(): void {
    this.held = true;
  }

  /** Holds when `undecided` (streaming, more may come), else takes `s` as text. */
  textUnless(undecided: boolean, s: string): void {
    if (undecided) this.hold();
    else this.text(s);
  }

  /** The text after the last call or marker, less (when streaming) a suffix that may start `markers`. */
  tail(s: string, markers: string[]): void {
    if (!this.partial) {
      this.text(s);
      return;
    }
    this.text(s.slice(0, s.length - markerPrefix(s, markers)));
    this.hold();
  }

  result(): ParsedOutput {
    // Streaming: trailing whitespace may turn out to precede a call.
    const content = this.partial ? this.content.trimEnd() : this.calls.length ? this.content.trimEnd() : this.content;
    return { content, calls: this.calls };
  }
}

/** Length of the longest suffix of s that is a proper prefix of a marker. */
function markerPrefix(s: string, markers: string[]): number {
  let best = 0;
  for (const m of markers) {
    for (let k = Math.min(m.length - 1, s.length); k > best; k--) {
      if (s.endsWith(m.slice(0, k))) { best = k; break; }
    }
  }
  return best;
}

interface CallSpec {
  /** Keys the arguments may go under, in preference order. */
  argKeys: string[];
  /** The model writes an "id" (Mistral): wait for it before announcing the call. */
  withId?: boolean;
  /** End marker of the call's block, where raw arguments stop. */
  close?: string;
}

type CallRead = { kind: 'more' } | { kind: 'invalid' } | { kind: 'call'; call: ParsedCall; end: number };

/** A call object scanned from `at` (a JSON object with name and arguments). */
function readCall(text: string, at: number, o: ParseOptions, spec: CallSpec): CallRead {
  const j = skipWs(text, at);
  if (j >= text.length) return o.partial ? { kind: 'more' } : { kind: 'invalid' };
  if (text[j] !== '{') return { kind: 'invalid' };
  const scan = scanJson(text, j);
  return callFromNode(text, scan.node, scan.error, o, spec);
}

function callFromNode(text: string, node: JsonNode | undefined, error: number | undefined, o: ParseOptions, spec: CallSpec): CallRead {
  if (node?.kind !== 'object') return { kind: 'invalid' };
  const open = !node.complete && error === undefined; // the text ran out inside the object
  const nameV = entryOf(node, 'name')?.value;
  if (nameV && (nameV.kind !== 'string' || (nameV.complete && !o.names.has(nameV.value)))) return { kind: 'invalid' };
  if (!nameV?.complete) return open && o.partial ? { kind: 'more' } : { kind: 'invalid' };
  const name = (nameV as { value: string }).value;
  const argsE = spec.argKeys.map((k) => entryOf(node, k)).find((e) => e !== undefined);
  const idV = spec.withId ? entryOf(node, 'id')?.value : undefined;
  const id = idV?.kind === 'string' && idV.complete ? idV.value : undefined;
  if (o.partial && open && (!argsE?.value || (spec.withId && id === undefined))) return { kind: 'more' };
  const end = (): number => {
    if (!node.complete) return error ?? text.length;
    const k = skipWs(text, node.end);
    if (!spec.close) return node.end;
    if (text.startsWith(spec.close, k)) return k + spec.close.length;
    // The end marker may still be coming.
    return o.partial && spec.close.startsWith(text.slice(k)) ? text.length : node.end;
  };
  const v = argsE?.value;
  if (!v) {
    // No arguments at all: a call without parameters (if the object is whole).
    return node.complete ? { kind: 'call', call: { name, ...(id ? { id } : {}), arguments: '{}', done: true }, end: end() } : { kind: 'call', call: { name, arguments: '', done: false }, end: text.length };
  }
  const call: ParsedCall = { name, ...(id ? { id } : {}), arguments: text.slice(v.start, v.end), done: v.complete };
  if (v.complete || error === undefined || error < v.start) return { kind: 'call', call, end: end() };
  // The arguments went wrong: keep what the model wrote, up to the block's end marker.
  const stop = spec.close ? text.indexOf(spec.close, v.start) : -1;
  let raw = text.slice(v.start, stop < 0 ? text.length : stop);
  // Streaming: the end tag may be arriving.
  if (stop < 0 && o.partial && spec.close) raw = raw.slice(0, raw.length - markerPrefix(raw, [spec.close]));
  call.arguments = raw.trimEnd().replace(/\}$/, '').trimEnd();
  return { kind: 'call', call, end: stop < 0 ? text.length : stop + (spec.close as string).length };
}

/** Hermes: <tool_call> {call} </tool_call>, anywhere in the reply, any number of times. */
function tagged(text: string, o: ParseOptions, out: Out): void {
  const OPEN = '<tool_call>';
  const CLOSE = '</tool_call>';
  let pos = 0;
  for (;;) {
    const i = text.indexOf(OPEN, pos);
    if (i < 0) { out.tail(text.slice(pos), [OPEN]); return; }
    out.text(text.slice(pos, i));
    const r = readCall(text, i + OPEN.length, o, { argKeys: ['arguments', 'parameters'], close: CLOSE });
    if (r.kind === 'more') { out.hold(); return; }
    if (r.kind === 'call') {
      out.call(r.call);
      pos = r.end;
      continue;
    }
    // Not a call: the block is text, up to its end tag.
    const j = text.indexOf(CLOSE, i);
    if (j < 0) { out.textUnless(o.partial, text.slice(i)); return; }
    out.text(text.slice(i, j + CLOSE.length));
    pos = j + CLOSE.length;
  }
}

/** Llama 3.x: the reply starts with a call object (after an optional <|python_tag|>); more may follow, split by ';'. */
function llama3(text: string, o: ParseOptions, out: Out): void {
  const TAG = '<|python_tag|>';
  let j = skipWs(text, 0);
  if (text.startsWith(TAG, j)) j = skipWs(text, j + TAG.length);
  else if (o.partial && TAG.startsWith(text.slice(j))) { out.hold(); return; }
  if (j >= text.length) { out.textUnless(o.partial, text); return; }
  if (text[j] !== '{') { out.text(text); return; }
  for (let n = 0; ; n++) {
    const r = readCall(text, j, o, { argKeys: ['parameters', 'arguments'] });
    if (r.kind === 'more') { out.hold(); return; }
    if (r.kind === 'invalid') { out.text(n === 0 ? text : text.slice(j)); return; }
    out.call(r.call);
    let k = skipWs(text, r.end);
    if (text[k] === ';') k = skipWs(text, k + 1);
    if (text[k] !== '{') {
      if (o.partial && k >= text.length) { out.hold(); return; }
      out.text(text.slice(r.end));
      return;
    }
    j = k;
  }
}

/** Marker + calls: Mistral's and Granite's [TOOL_CALLS][...] / <|tool_call|>[...], and [TOOL_CALLS]name[ARGS]{...}. */
function marked(text: string, o: ParseOptions, out: Out): void {
  const MARK = o.format === 'granite' ? '<|tool_call|>' : '[TOOL_CALLS]';
  const withId = o.format === 'mistral';
  let pos = 0;
  for (;;) {
    const i = text.indexOf(MARK, pos);
    if (i < 0) { out.tail(text.slice(pos), [MARK]); return; }
    out.text(text.slice(pos, i));
    const j = skipWs(text, i + MARK.length);
    if (j >= text.length) { if (o.partial) out.hold(); return; }
    const end = text[j] === '[' ? callArray(text, j, o, out, withId) : o.format === 'mistral-args' ? argsCall(text, j, o, out, MARK) : -1;
    if (end === undefined) return;
    if (end < 0) {
      // Not calls after all: the marker and what follows are text, up to the next marker.
      const next = text.indexOf(MARK, j);
      out.text(text.slice(i, next < 0 ? text.length : next));
      if (next < 0) return;
      pos = next;
      continue;
    }
    pos = end;
  }
}

/** A JSON array of call objects at j. Returns where it ended, -1 if it holds no call, undefined when streaming must wait. */
function callArray(text: string, j: number, o: ParseOptions, out: Out, withId: boolean): number | undefined {
  const scan = scanJson(text, j);
  const arr = scan.node;
  if (arr?.kind !== 'array') return -1;
  let n = 0;
  for (const item of arr.items) {
    const last = item === arr.items[arr.items.length - 1];
    const r = callFromNode(text, item, last ? scan.error : undefined, o, { argKeys: ['arguments', 'parameters'], withId });
    if (r.kind === 'more') { out.hold(); return undefined; }
    if (r.kind === 'invalid') {
      if (n === 0) return -1;
      out.text(text.slice(item.start));
      return text.length;
    }
    out.call(r.call);
    n++;
  }
  if (arr.complete) return n === 0 ? -1 : arr.end;
  if (scan.error === undefined && o.partial) { out.hold(); return undefined; }
  if (n === 0) return -1;
  // A reply cut off or broken inside the array: what follows the calls is text.
  return Math.min(text.length, scan.error ?? text.length);
}

/** Mistral 3.1+: name[CALL_ID]id[ARGS]{json} right after [TOOL_CALLS]. */
function argsCall(text: string, j: number, o: ParseOptions, out: Out, mark: string): number | undefined {
  const m = /^[A-Za-z0-9_.-]+/.exec(text.slice(j, j + 256));
  if (!m) return -1;
  let k = j + m[0].length;
  const name = m[0];
  const wait = () => { out.hold(); return undefined; };
  const rest = text.slice(k);
  if (o.partial && (rest === '' || '[ARGS]'.startsWith(rest) || '[CALL_ID]'.startsWith(rest))) return wait();
  let id: string | undefined;
  if (text.startsWith('[CALL_ID]', k)) {
    const idm = /^[A-Za-z0-9]*/.exec(text.slice(k + 9, k + 9 + 64)) as RegExpExecArray;
    k += 9 + idm[0].length;
    const after = text.slice(k);
    if (o.partial && (after === '' || '[ARGS]'.startsWith(after))) return wait();
    id = idm[0];
  }
  if (!text.startsWith('[ARGS]', k) || !o.names.has(name)) return -1;
  k += 6;
  const a = skipWs(text, k);
  if (a >= text.length) {
    if (o.partial) return wait();
    out.call({ name, ...(id ? { id } : {}), arguments: '', done: false });
    return text.length;
  }
  const scan = scanJson(text, a);
  const v = scan.node;
  if (!v || (scan.error !== undefined && scan.error <= a)) {
    const stop = text.indexOf(mark, a);
    out.call({ name, ...(id ? { id } : {}), arguments: text.slice(a, stop < 0 ? text.length : stop).trimEnd(), done: false });
    return stop < 0 ? text.length : stop;
  }
  if (v.complete) {
    out.call({ name, ...(id ? { id } : {}), arguments: text.slice(v.start, v.end), done: true });
    return v.end;
  }
  const stop = scan.error === undefined ? -1 : text.indexOf(mark, a);
  out.call({ name, ...(id ? { id } : {}), arguments: text.slice(v.start, stop < 0 ? text.length : stop).trimEnd(), done: false });
  return stop < 0 ? text.length : stop;
}

/** llama.cpp's generic format: the whole reply is {"tool_call": …}, {"tool_calls": […]} or {"response": …}. */
function generic(text: string, o: ParseOptions, out: Out): void {
  const j = skipWs(text, 0);
  if (j >= text.length) { out.textUnless(o.partial, text); return; }
  if (text[j] !== '{') { out.text(text); return; }
  const scan = scanJson(text, j);
  const node = scan.node as JsonNode;
  const open = !node.complete && scan.error === undefined;
  const first = node.kind === 'object' ? node.entries[0] : undefined;
  if (!first?.keyComplete || !first.value) { out.textUnless(open && o.partial, text); return; }
  const v = first.value;
  const spec: CallSpec = { argKeys: ['arguments', 'parameters'] };
  const valueError = open ? undefined : scan.error;
  if (first.key === 'response') {
    if (v.kind === 'string') { out.text(v.value); return; }
    if (!v.complete) { out.textUnless(o.partial && open, text); return; }
    out.text(text.slice(v.start, v.end));
    return;
  }
  if (first.key === 'tool_call') {
    const r = callFromNode(text, v, valueError, o, spec);
    if (r.kind === 'more') { out.hold(); return; }
    if (r.kind === 'invalid') { out.text(text); return; }
    out.call(r.call);
    return;
  }
  if (first.key === 'tool_calls' && v.kind === 'array') {
    let n = 0;
    for (const item of v.items) {
      const r = callFromNode(text, item, item === v.items[v.items.length - 1] ? valueError : undefined, o, spec);
      if (r.kind === 'more') { out.hold(); return; }
      if (r.kind === 'invalid') { if (n === 0) out.text(text); return; }
      out.call(r.call);
      n++;
    }
    if (n === 0 && !(o.partial && open)) out.text(text);
    if (o.partial && open) out.hold();
    return;
  }
  out.text(text);
}
