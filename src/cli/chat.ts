// `qllm chat <model.gguf>`: an interactive multi-turn REPL. The chat template
// renders the whole conversation each turn; the session reuses the KV cache for
// the prefix it already holds, so a turn costs only its new tokens.
// At a terminal: Ctrl-C stops the reply in progress; at the prompt it exits
// (exit 130), as does Ctrl-D (exit 0). From a pipe (`printf 'Hi\nMore\n' | qllm
// chat m.gguf`): one user turn per line, each reply printed plainly, exit 0 at
// the end of input.
import { createInterface } from 'node:readline';
import type { ChatMessage } from '../api.ts';
import { parse, positionals } from './args.ts';
import { Interrupted } from './main.ts';
import { loadForCli, modelFlags, samplerFlags, samplerOptions, statsLines, tokenText } from './run.ts';

const HELP = `usage: qllm chat <model.gguf> [-c N] [--system TEXT] [--special] [sampler options as in 'qllm run']
  Type a message and press Enter. Commands: /reset (new conversation), /stats, /exit.
  Ctrl-C stops the current reply; Ctrl-C at the prompt or Ctrl-D exits.
  Piped input: one message per line, replies printed one after another.
  --system TEXT   a system message at the start of the conversation
  -c, --ctx N, --kv-type T, --memory-budget B, --no-f16: as for 'qllm run'
  --special       print control tokens the model generates (<|im_end|>, ...) as text
  --no-context-shift  stop at the end of the context instead of dropping the oldest
                  turns (the system message is kept) and going on`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(argv, { ...modelFlags, ...samplerFlags, system: { type: 'string' }, special: { type: 'boolean' }, 'no-context-shift': { type: 'boolean' } }, 'chat');
  if (v.help) return void console.log(HELP);
  const [path] = positionals(pos, ['model.gguf'], 'chat');
  const opts = { ...samplerOptions(v), contextShift: v['no-context-shift'] !== true };
  const tty = process.stdin.isTTY === true;
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
      let reply = '';
      try {
        const gen = model.chat(messages, { ...opts, signal: current.signal });
        for await (const t of gen) {
          let out = tokenText(model, t, v.special === true);
          // The template's "Assistant:" leaves the reply's first space to the model: drop it.
          if (!reply.trim()) out = out.trimStart();
          reply += t.text;
          if (out) process.stdout.write(out);
        }
        const s = await gen.stats;
        if (s.stopReason === 'abort') process.stdout.write(' [stopped]');
        process.stdout.write('\n');
        lastStats = statsLines(model, s, loadMs);
      } catch (e) {
        messages.pop();
        throw e;
      } finally {
        current = undefined;
      }
      messages.push({ role: 'assistant', content: reply.trim() });
    }
  } finally {
    rl.close();
    model.dispose();
  }
  if (interrupted) throw new Interrupted();
}
