// gpt-oss's tool calls (OpenAI harmony): a call is a message addressed to the
// function, with the recipient in the role header or in the channel header, as
// llama.cpp's gpt-oss parser (common/chat.cpp) reads them:
//
//   <|start|>assistant to=functions.NAME<|channel|>commentary json<|message|>{ARGS}<|call|>
//   <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{ARGS}<|call|>
//
// (the channel may also be analysis; the constraint is optional). <|call|> ends
// generation, so the arguments usually run to the end of the reply.
//
// The text read here is either the answer that src/reasoning.ts passes on (with
// `calls`, it hands each call message on whole, in its harmony form, instead of
// dropping it) or, with reasoning_format none, the raw reply, whose first header
// may open right after the generation prompt's <|start|>assistant (` to=functions.f…`).
// Other messages are text as they stand; so is a call to an undeclared function.
import type { ParsedCall, ParseOptions } from './parse.ts';
import { scanJson, skipWs } from './json-scan.ts';

export const H_START = '<|start|>';
export const H_CHANNEL = '<|channel|>';
export const H_MESSAGE = '<|message|>';
/** What ends a message's body: the call and end tokens, or the next message's start. */
export const H_BODY_ENDS = ['<|call|>', '<|end|>', '<|return|>', H_START];
/** A header longer than this without <|message|> is not a header (as in reasoning.ts). */
const MAX_HEADER = 512;

/** What the parser writes to (parse.ts's collector). */
export interface HarmonySink {
  text(s: string): void;
  call(c: ParsedCall): void;
  hold(): void;
  /** Text after the last call, less (streaming) a suffix that may start one of `markers`. */
  tail(s: string, markers: string[]): void;
}

/** The function a header addresses (`to=functions.NAME`), if any. */
export function harmonyRecipient(header: string): string | undefined {
  return /(?:^|\s)to=functions\.([A-Za-z0-9_.-]+)/.exec(header)?.[1];
}

/** Where the earliest of `marks` occurs at or after `from`: [index, mark], or [-1, ''] . */
function firstOf(text: string, marks: readonly string[], from: number): [number, string] {
  let best = -1;
  let which = '';
  for (const m of marks) {
    const i = text.indexOf(m, from);
    if (i >= 0 && (best < 0 || i < best)) { best = i; which = m; }
  }
  return [best, which];
}

/** Length of the longest suffix of s that is a proper prefix of a marker. */
function partialMark(s: string, marks: readonly string[]): number {
  let best = 0;
  for (const m of marks) {
    for (let k = Math.min(m.length - 1, s.length); k > best; k--) {
      if (s.endsWith(m.slice(0, k))) { best = k; break; }
    }
  }
  return best;
}

export function harmonyCalls(text: string, o: ParseOptions, out: HarmonySink): void {
  let pos = 0;
  // The raw reply may start with the role header's recipient.
  const lead = /^\s*to=/.test(text);
  if (!lead && o.partial && /^\s*(t|to)?$/.test(text)) {
    out.hold();
    return;
  }
  for (;;) {
    const [next] = firstOf(text, [H_START, H_CHANNEL], pos);
    const i = pos === 0 && lead ? 0 : next;
    if (i < 0) {
      out.tail(text.slice(pos), [H_START, H_CHANNEL]);
      return;
    }
    out.text(text.slice(pos, i));
    const m = text.indexOf(H_MESSAGE, i);
    // A <|start|> before this header's <|message|> opens another message: this one was no header.
    const again = text.indexOf(H_START, i + 1);
    const cut = again >= 0 && (m < 0 || again < m);
    if (cut || m < 0 || m - i > MAX_HEADER) {
      if (!cut && m < 0 && o.partial && text.length - i <= MAX_HEADER) { out.hold(); return; }
      // Not a header: its opening marker is text, and the search goes on after it.
      const skip = text.startsWith(H_START, i) ? H_START.length : text.startsWith(H_CHANNEL, i) ? H_CHANNEL.length : 1;
      out.text(text.slice(i, i + skip));
      pos = i + skip;
      continue;
    }
    const body = m + H_MESSAGE.length;
    const name = harmonyRecipient(text.slice(i, m));
    if (name === undefined || !o.names.has(name)) {
      // Another channel's message (raw replies), or a call to an undeclared function: text.
      out.text(text.slice(i, body));
      pos = body;
      continue;
    }
    const [e, mark] = firstOf(text, H_BODY_ENDS, body);
    // Streaming: a body end may be arriving.
    const stop = e >= 0 ? e : o.partial ? text.length - partialMark(text.slice(body), H_BODY_ENDS) : text.length;
    out.call(callArgs(text.slice(0, stop), name, body));
    if (e < 0) {
      if (o.partial) out.hold();
      return;
    }
    pos = mark === H_START ? e : e + mark.length;
  }
}

/** The call with the arguments in text[from..]: the JSON value as written, else the raw text. */
function callArgs(text: string, name: string, from: number): ParsedCall {
  const j = skipWs(text, from);
  if (j >= text.length) return { name, arguments: '', done: false };
  const scan = scanJson(text, j);
  const v = scan.node;
  if (v?.complete) return { name, arguments: text.slice(v.start, v.end), done: true };
  // Cut off (streaming: still coming) or not JSON: what the model wrote.
  const raw = text.slice(j);
  return { name, arguments: scan.error === undefined ? raw : raw.trimEnd(), done: false };
}
