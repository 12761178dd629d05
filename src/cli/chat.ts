// `qllm chat <model.gguf>`: an interactive multi-turn REPL. The chat template
// renders the whole conversation each turn; the session reuses the KV cache for
// the prefix it already holds, so a turn costs only its new tokens.
// At a terminal: Ctrl-C stops the reply in progress; at the prompt it exits
// (exit 130), as does Ctrl-D (exit 0). From a pipe (`printf 'Hi\nMore\n' | qllm
// chat m.gguf`): one user turn per line, each reply printed plainly, exit 0 at
// the end of input.
// A reasoning model's thinking (gpt-oss, <think> models) is shown before the
// answer, dimmed at a terminal, or left out with --hide-reasoning; the history
// keeps it apart from the answer, for the template to show or drop.
import { createInterface } from 'node:readline';
import type { ChatMessage, Token } from '../api.ts';
import { parse, positionals } from './args.ts';
import { Interrupted } from './main.ts';
import { loadForCli, modelFlags, samplerFlags, samplerOptions, statsLines, tokenText } from './run.ts';

const HELP = `usage: qllm chat <model.gguf> [-c N] [--system TEXT] [--special] [--hide-reasoning] [sampler options as in 'qllm run']
  Type a message and press Enter. Commands: /reset (new conversation), /stats, /exit.
  Ctrl-C stops the current reply; Ctrl-C at the prompt or Ctrl-D exits.
  Piped input: one message per line, replies printed one after another.
  --system TEXT   a system message at the start of the conversation
  -c, --ctx N, --kv-type T, --memory-budget B, --no-f16: as for 'qllm run'
  --special       print control tokens the model generates (<|im_end|>, ...) as text
  --hide-reasoning  do not print a reasoning model's thinking (gpt-oss's analysis,
                  <think> blocks), only its answer; shown dimmed otherwise (at a
                  terminal; elsewhere between 'Thinking...' and '...done thinking.')
  --no-context-shift  stop at the end of the context instead of dropping the oldest
                  turns (the system message is kept) and going on`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(argv, { ...modelFlags, ...samplerFlags, system: { type: 'string' }, special: { type: 'boolean' }, 'hide-reasoning': { type: 'boolean' }, 'no-context-shift': { type: 'boolean' } }, 'chat');
  if (v.help) return void console.log(HELP);
  const [path] = positionals(pos, ['model.gguf'], 'chat');
  const opts = { ...samplerOptions(v), contextShift: v['no-context-shift'] !== true };
  const tty = process.stdin.isTTY === true;
  // Dim text only where a terminal shows it (and NO_COLOR does not forbid it).
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const { model, loadMs } = await loadForCli(path, v);
  const system: ChatMessage[] = v.system ? [{ role: 'system', content: v.system }] : [];
  let messages: ChatMessage[] = [...system];
  let current: AbortController | undefined;
  let lastStats = '';
  let interrupted = false;

  // Lines are read as they come, also while a reply streams: a pipe's lines
  // wait their turn, and the end of input ends the chat after the last one.
  const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, prompt: '> ' });
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else {
      interrupted = true;
      rl.close();
    }
  });
  const lines = rl[Symbol.asyncIterator]();
  if (tty) console.error(`qllm chat: ${model.info.name} (${model.info.contextLength} tokens of context). /reset, /stats, /exit; Ctrl-C stops a reply.`);
  // Before the first reply, not after it: the note explains that reply.
  const template = model.config.tokenizer?.chatTemplate;
  if (!template?.trim()) console.error('(note: the model has no chat template; using a generic one)');
  try {
    for (;;) {
      if (tty) rl.prompt();
      const next = await lines.next();
      if (next.done) break;
      const text = String(next.value).trim();
      if (!text) continue;
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        messages = [...system];
        model.session.reset();
        lastStats = '';
        console.error('(new conversation)');
        continue;
      }
      if (text === '/stats') {
        console.error(lastStats || '(no reply yet)');
        continue;
      }
      messages.push({ role: 'user', content: text });
      current = new AbortController();
      let reply: ChatMessage;
      try {
        const gen = model.chat(messages, { ...opts, signal: current.signal });
        const printer = new ReplyPrinter((s) => process.stdout.write(s), { color, hide: v['hide-reasoning'] === true });
        await printer.print(gen, (t) => tokenText(model, t, v.special === true));
        const s = await gen.stats;
        if (s.stopReason === 'abort') process.stdout.write(' [stopped]');
        process.stdout.write('\n');
        lastStats = statsLines(model, s, loadMs);
        reply = historyTurn(await gen.message);
      } catch (e) {
        messages.pop();
        throw e;
      } finally {
        current = undefined;
      }
      messages.push(reply);
    }
  } finally {
    rl.close();
    model.dispose();
  }
  if (interrupted) throw new Interrupted();
}

const DIM = '\u001b[2m';
const UNDIM = '\u001b[22m';

/**
 * Prints a streamed chat reply: the thinking first (dimmed with `color`, else
 * between Ollama's CLI's 'Thinking...' and '...done thinking.' lines; nothing
 * with `hide`), then the answer, whose leading whitespace is dropped (the
 * default template's "Assistant:" leaves the first space to the model).
 */
export class ReplyPrinter {
  private thinking = false;
  private answered = false;

  constructor(
    private readonly write: (s: string) => void,
    private readonly o: { color: boolean; hide: boolean },
  ) {}

  /** Prints every token of `gen`; `text(t)` is what to show of its answer part (control tokens with --special). */
  async print(gen: AsyncIterable<Token>, text: (t: Token) => string = (t) => t.text): Promise<void> {
    try {
      for await (const t of gen) {
        if (t.reasoning) this.reasoning(t.reasoning);
        this.content(text(t));
      }
    } finally {
      this.close();
    }
  }

  reasoning(s: string): void {
    if (this.o.hide) return;
    if (!this.thinking) {
      s = s.trimStart();
      if (!s) return;
      this.thinking = true;
      this.write(this.o.color ? DIM : 'Thinking...\n');
    }
    this.write(s);
  }

  content(s: string): void {
    if (!this.answered) {
      s = s.trimStart();
      if (!s) return;
      this.answered = true;
    }
    if (this.thinking) {
      this.thinking = false;
      this.write(this.o.color ? `${UNDIM}\n\n` : '\n...done thinking.\n\n');
    }
    this.write(s);
  }

  /** Ends a reply cut off while thinking. */
  close(): void {
    if (!this.thinking) return;
    this.thinking = false;
    this.write(this.o.color ? UNDIM : '\n...done thinking.');
  }
}

/** The reply as the next turn's history: the answer trimmed, the thinking apart (the template shows or drops it). */
export function historyTurn(m: ChatMessage): ChatMessage {
  return { role: 'assistant', content: m.content.trim(), ...(m.reasoning ? { reasoning: m.reasoning } : {}) };
}
