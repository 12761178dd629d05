// Streaming a reply with tool calls as OpenAI-style deltas: the text so far is
// parsed again at each piece (parse.ts holds back whatever is undecided) and
// compared with what was already sent. Each call is announced once (index, id,
// name), then its arguments follow in fragments as the model writes them.
import type { ParsedCall, ParseOptions } from './parse.ts';
import { parseToolOutput } from './parse.ts';

export type StreamDelta =
  | { content: string }
  | { index: number; id: string; name: string }
  | { index: number; arguments: string };

export interface FinalCall { id: string; name: string; arguments: string; done: boolean }

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A fresh tool-call id: OpenAI's call_… form, or the 9 letters and digits Mistral's templates insist on. */
export function newCallId(kind: 'openai' | 'mistral9'): string {
  const n = kind === 'mistral9' ? 9 : 24;
  // Web Crypto: this module also runs in the browser build.
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(n));
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return kind === 'mistral9' ? s : `call_${s}`;
}

export class ToolCallStream {
  private text = '';
  private sentContent = '';
  private readonly sent: { id: string; args: string; frozen: boolean }[] = [];

  constructor(
    private readonly opts: Omit<ParseOptions, 'partial'>,
    private readonly idKind: 'openai' | 'mistral9',
  ) {}

  /** The reply's next piece of text; the deltas it makes certain. */
  push(piece: string): StreamDelta[] {
    if (piece === '') return [];
    this.text += piece;
    return this.diff(false).deltas;
  }

  /** The reply ended: the last deltas and the whole result (ids as announced). */
  finish(): { deltas: StreamDelta[]; content: string; calls: FinalCall[] } {
    return this.diff(true);
  }

  private diff(final: boolean): { deltas: StreamDelta[]; content: string; calls: FinalCall[] } {
    const r = parseToolOutput(this.text, { ...this.opts, partial: !final });
    const deltas: StreamDelta[] = [];
    // Text only ever grows at the end; anything else (an edge of malformed output) is not sent again.
    if (r.content.startsWith(this.sentContent) && r.content.length > this.sentContent.length) {
      deltas.push({ content: r.content.slice(this.sentContent.length) });
      this.sentContent = r.content;
    }
    r.calls.forEach((c: ParsedCall, index) => {
      let s = this.sent[index];
      if (!s) {
        s = { id: c.id ?? newCallId(this.idKind), args: '', frozen: false };
        this.sent[index] = s;
        deltas.push({ index, id: s.id, name: c.name });
      }
      if (!s.frozen && c.arguments.length > s.args.length) {
        if (c.arguments.startsWith(s.args)) {
          deltas.push({ index, arguments: c.arguments.slice(s.args.length) });
          s.args = c.arguments;
        } else s.frozen = true;
      }
    });
    const calls = r.calls.map((c, i) => ({ id: this.sent[i]?.id ?? c.id ?? newCallId(this.idKind), name: c.name, arguments: c.arguments, done: c.done }));
    return { deltas, content: r.content, calls };
  }
}
