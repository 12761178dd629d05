// `qllm chat <model.gguf>`: an interactive multi-turn REPL. The chat template
// renders the whole conversation each turn; the session reuses the KV cache for
// the prefix it already holds, so a turn costs only its new tokens.
// Ctrl-C stops the reply in progress; at the prompt it exits (as does Ctrl-D).
import { createInterface } from 'node:readline';
import type { ChatMessage } from '../api.ts';
import { parse, positionals } from './args.ts';
import { loadForCli, modelFlags, samplerFlags, samplerOptions, statsLines } from './run.ts';

const HELP = `usage: qllm chat <model.gguf> [-c N] [--system TEXT] [sampler options as in 'qllm run']
  Type a message and press Enter. Commands: /reset (new conversation), /stats, /exit.
  Ctrl-C stops the current reply; Ctrl-C at the prompt or Ctrl-D exits.`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(argv, { ...modelFlags, ...samplerFlags, system: { type: 'string' } }, 'chat');
  if (v.help) return void console.log(HELP);
  const [path] = positionals(pos, ['model.gguf'], 'chat');
  const opts = samplerOptions(v);
  const { model, loadMs } = await loadForCli(path, v);
  const system: ChatMessage[] = v.system ? [{ role: 'system', content: v.system }] : [];
  let messages: ChatMessage[] = [...system];
  let current: AbortController | undefined;
  let lastStats = '';
  let noted = false;

  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  console.error(`qllm chat: ${model.info.name} (${model.info.contextLength} tokens of context). /reset, /stats, /exit; Ctrl-C stops a reply.`);
  const ask = () => new Promise<string | undefined>((res) => {
    const onClose = () => res(undefined);
    rl.once('close', onClose);
    rl.question('> ', (line) => {
      rl.off('close', onClose);
      res(line);
    });
  });
  try {
    for (;;) {
      const line = await ask();
      if (line === undefined) break;
      const text = line.trim();
      if (!text) continue;
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        messages = [...system];
        model.session.reset();
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
          reply += t.text;
          process.stdout.write(t.text);
        }
        const s = await gen.stats;
        if (model.usedDefaultTemplate && !noted) {
          noted = true;
          console.error('\n(note: the model has no chat template; using a generic one)');
        }
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
}
