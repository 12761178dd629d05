// Splits a reasoning model's reply into its thinking and its answer, as
// llama.cpp's chat parsers do (common/chat.cpp), incrementally: generated text
// comes in pieces that may cut a tag anywhere, so a piece that could be the
// start of a tag is held back until the next one decides it.
//
// Two syntaxes:
// - 'harmony' (gpt-oss): messages `<|channel|>NAME<|message|>BODY<|end|>`, each
//   after the first opened by `<|start|>assistant`. The analysis channel is
//   reasoning, final is the answer, a commentary message without a recipient
//   is a preamble meant for the user (content, as llama.cpp has it). A message
//   with a recipient (` to=functions.f`, ` to=python`) is a tool call: with
//   `calls` (a chat with tools, src/tools/harmony.ts reads the answer), a call
//   to one of those functions goes on into the answer whole, normalised to
//   `<|start|>assistant HEADER<|message|>ARGS<|call|>`, for the tool parser;
//   any other, and every call without `calls`, is dropped rather than leaked
//   into the answer. ` to=assistant` (a stray prefix gpt-oss sometimes writes
//   before a channel) is no recipient.
// - 'think' (DeepSeek-R1, Qwen3, …): `<think>REASONING</think>ANSWER`. Templates
//   that open `<think>` in the generation prompt ("thinking forced open") make
//   the model start inside the block: pass `open` (thinkingOpen()). Reasoning is
//   trimmed, and the whitespace after `</think>` dropped, as llama.cpp does.
// Anything else ('none') passes through as content.

export type ReasoningSyntax = 'harmony' | 'think' | 'none';

/** One step of output: text of the thinking, of the answer, or both (in that order). */
export interface ReasoningDelta {
  reasoning?: string;
  content?: string;
}

/**
 * llama-server's --reasoning-format: 'none' leaves the reply as generated;
 * 'auto' and 'deepseek' put the thinking in reasoning_content; 'deepseek-legacy'
 * also keeps it in content (inline while streaming).
 */
export type ReasoningFormat = 'none' | 'auto' | 'deepseek' | 'deepseek-legacy';
export const REASONING_FORMATS: readonly ReasoningFormat[] = ['none', 'auto', 'deepseek', 'deepseek-legacy'];

/** The syntax a model's replies use, from its architecture and chat template (llama.cpp detects by the template). */
export function reasoningSyntax(arch: string | undefined, template: string | undefined): ReasoningSyntax {
  if (arch === 'gpt-oss' || template?.includes('<|channel|>')) return 'harmony';
  if (template?.includes('<think>')) return 'think';
  return 'none';
}

/**
 * Whether a rendered prompt leaves the model inside its thinking: a template that
 * ends the generation prompt with `<think>` (DeepSeek-R1, Qwen3 with thinking on),
 * or harmony's analysis header.
 */
export function thinkingOpen(syntax: ReasoningSyntax, prompt: string): boolean {
  if (syntax === 'think') return /<think>\s*$/.test(prompt);
  if (syntax === 'harmony') return prompt.endsWith('<|channel|>analysis<|message|>');
  return false;
}

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';
const H_MESSAGE = '<|message|>';
const H_END = '<|end|>';
const H_START = '<|start|>';
/** A harmony header longer than this without <|message|> is not a header: the text is shown. */
const MAX_HEADER = 512;

/** Length of the longest suffix of `s` that is a proper prefix of one of `tags` (text to hold back). */
function partialTag(s: string, tags: readonly string[]): number {
  let best = 0;
  for (const tag of tags) {
    for (let n = Math.min(tag.length - 1, s.length); n > best; n--) {
      if (s.endsWith(tag.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/** 'call': a harmony tool call handed on as content (see `calls`). */
type Mode = 'reasoning' | 'content' | 'call' | 'drop';

const H_CALL = '<|call|>';
/** What ends a harmony message's body (a <|start|> opening the next one stays for the header). */
const H_BODY_ENDS = [H_END, H_CALL, '<|return|>', H_START];

/** The incremental splitter: push() each piece, finish() at the end; each returns the deltas now decided. */
export class ReasoningParser {
  private buf = '';
  private state: 'start' | 'header' | 'body' | 'content';
  private mode: Mode = 'content';
  /** Drop whitespace at the start of what comes next (after <think> and </think>). */
  private skipWs = false;
  private out: ReasoningDelta[] = [];
  /** Harmony: the functions whose calls go on as content (src/tools/harmony.ts reads them) instead of being dropped. */
  private readonly calls: ReadonlySet<string> | undefined;

  constructor(
    readonly syntax: ReasoningSyntax,
    opts: { open?: boolean; calls?: ReadonlySet<string> } = {},
  ) {
    this.calls = opts.calls;
    if (syntax === 'none') this.state = 'content';
    else if (syntax === 'harmony') this.state = opts.open ? 'body' : 'header';
    else this.state = opts.open ? 'body' : 'start';
    if (opts.open) {
      this.mode = 'reasoning';
      this.skipWs = syntax === 'think';
    }
  }

  push(text: string): ReasoningDelta[] {
    this.buf += text;
    this.step(false);
    return this.take();
  }

  finish(): ReasoningDelta[] {
    this.step(true);
    return this.take();
  }

  private take(): ReasoningDelta[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private emit(mode: Mode, text: string): void {
    if (text === '' || mode === 'drop') return;
    if (mode === 'call') mode = 'content';
    const last = this.out.at(-1);
    // Consecutive text of one kind goes out as one delta; reasoning then content may share one.
    if (mode === 'content' && last && last.content === undefined) last.content = text;
    else if (mode === 'content' && last?.content !== undefined) last.content += text;
    else if (mode === 'reasoning' && last?.reasoning !== undefined && last.content === undefined) last.reasoning += text;
    else this.out.push(mode === 'content' ? { content: text } : { reasoning: text });
  }

  /** Consumes as much of buf as can be decided (all of it when `end`). */
  private step(end: boolean): void {
    for (;;) {
      if (this.skipWs) {
        const t = this.buf.trimStart();
        if (t === '' && !end) { this.buf = ''; return; }
        this.buf = t;
        this.skipWs = false;
      }
      if (this.syntax === 'think' ? !this.stepThink(end) : !this.stepHarmony(end)) return;
    }
  }

  /** One transition of the <think> syntax; false when nothing more can be decided now. */
  private stepThink(end: boolean): boolean {
    switch (this.state) {
      case 'start': {
        const t = this.buf.trimStart();
        if (t.startsWith(THINK_OPEN)) {
          this.buf = t.slice(THINK_OPEN.length);
          this.state = 'body';
          this.mode = 'reasoning';
          this.skipWs = true;
          return true;
        }
        if (!end && THINK_OPEN.startsWith(t)) return false; // '' or a prefix of <think>: wait
        this.state = 'content';
        return true;
      }
      case 'body': {
        const i = this.buf.indexOf(THINK_CLOSE);
        if (i >= 0) {
          this.emit('reasoning', this.buf.slice(0, i).trimEnd());
          this.buf = this.buf.slice(i + THINK_CLOSE.length);
          this.state = 'content';
          this.skipWs = true;
          return true;
        }
        if (end) {
          this.emit('reasoning', this.buf.trimEnd());
          this.buf = '';
          return false;
        }
        // Hold back a possible start of </think> and the whitespace before it (trimmed if it closes).
        const keep = this.buf.length - partialTag(this.buf, [THINK_CLOSE]);
        const cut = this.buf.slice(0, keep).trimEnd().length;
        this.emit('reasoning', this.buf.slice(0, cut));
        this.buf = this.buf.slice(cut);
        return false;
      }
      default:
        this.emit('content', this.buf);
        this.buf = '';
        return false;
    }
  }

  /** One transition of harmony; false when nothing more can be decided now. */
  private stepHarmony(end: boolean): boolean {
    if (this.state === 'content') {
      this.emit('content', this.buf);
      this.buf = '';
      return false;
    }
    if (this.state === 'header') {
      const i = this.buf.indexOf(H_MESSAGE);
      if (i >= 0) {
        const header = this.buf.slice(0, i);
        this.mode = headerMode(header, this.calls);
        // The call whole, with the role header the first message leaves to the generation prompt
        // (and the space before a recipient that opens the reply without one: `assistantto=` names no recipient).
        if (this.mode === 'call') this.emit('call', `${header.trimStart().startsWith(H_START) ? '' : `${H_START}assistant${header.startsWith('to=') ? ' ' : ''}`}${header}${H_MESSAGE}`);
        this.buf = this.buf.slice(i + H_MESSAGE.length);
        this.state = 'body';
        return true;
      }
      const t = this.buf.trimStart();
      // Text that cannot be a header (a model that ignores the format): shown as it is.
      // (The first header may open with the recipient: ` to=functions.f<|channel|>…`.)
      const headerLike = t.startsWith('<|') || t.startsWith('to=') || '<|'.startsWith(t) || 'to='.startsWith(t);
      if (!headerLike || this.buf.length > MAX_HEADER || (end && !t.includes('<|') && !t.startsWith('to='))) {
        this.state = 'content';
        return true;
      }
      if (end) this.buf = ''; // an unfinished header says nothing
      return false;
    }
    // body: up to <|end|> (<|call|>, <|return|>), or a <|start|> that opens the next message without one.
    let i = -1;
    let tag = '';
    for (const t of H_BODY_ENDS) {
      const j = this.buf.indexOf(t);
      if (j >= 0 && (i < 0 || j < i)) { i = j; tag = t; }
    }
    if (i >= 0) {
      this.emit(this.mode, this.buf.slice(0, i));
      // A call handed on ends as harmony ends it, whatever closed it.
      if (this.mode === 'call') this.emit('call', H_CALL);
      this.buf = this.buf.slice(tag === H_START ? i : i + tag.length);
      this.state = 'header';
      return true;
    }
    const keep = end ? this.buf.length : this.buf.length - partialTag(this.buf, H_BODY_ENDS);
    this.emit(this.mode, this.buf.slice(0, keep));
    this.buf = this.buf.slice(keep);
    return false;
  }
}

/** What a harmony header (`<|start|>assistant<|channel|>final`, ` to=functions.f<|channel|>commentary json`) says to do with its message. */
function headerMode(header: string, calls: ReadonlySet<string> | undefined): Mode {
  const to = /(?:^|\s)to=([^\s<]+)/.exec(header)?.[1];
  // A tool call (or a built-in tool's): not for the user, but for the tool parser when it reads calls.
  if (to !== undefined && to !== 'assistant') return to.startsWith('functions.') && calls?.has(to.slice(10)) ? 'call' : 'drop';
  // The last channel counts: `<|channel|>commentary to=assistant<|channel|>final` is a final message.
  const channels = [...header.matchAll(/<\|channel\|>\s*([A-Za-z_]+)/g)];
  return channels.at(-1)?.[1] === 'analysis' ? 'reasoning' : 'content';
}

/** The deltas folded into one (reasoning first). */
export function mergeDeltas(ds: readonly ReasoningDelta[]): { reasoning: string; content: string } {
  let reasoning = '';
  let content = '';
  for (const d of ds) {
    reasoning += d.reasoning ?? '';
    content += d.content ?? '';
  }
  return { reasoning, content };
}

/** A whole reply split at once. */
export function splitReasoning(syntax: ReasoningSyntax, text: string, opts: { open?: boolean; calls?: ReadonlySet<string> } = {}): { reasoning: string; content: string } {
  const p = new ReasoningParser(syntax, opts);
  return mergeDeltas([...p.push(text), ...p.finish()]);
}
