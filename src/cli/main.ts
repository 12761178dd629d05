// `qllm <command> …`: dispatches to src/cli/<command>.ts and turns qllm's own
// errors into one line on stderr and exit code 1. Anything else is a bug, and
// is printed with its stack so that it can be reported.
import { isQllmError, UsageError } from '../errors.ts';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> };

const commands: Record<string, Command> = {
  run: { summary: 'generate text from a prompt', load: () => import('./run.ts') },
  chat: { summary: 'interactive multi-turn chat', load: () => import('./chat.ts') },
  info: { summary: 'describe a GGUF file and the memory quantization saves', load: () => import('./info.ts') },
  tokenize: { summary: 'print the token ids of a text', load: () => import('./tokenize.ts') },
  gpu: { summary: 'show the WebGPU adapter, its features and limits', load: () => import('./gpu.ts') },
  quantize: { summary: 'quantize an F32/F16 GGUF to Q4_0, Q4_K_M, Q8_0, …', load: () => import('./quantize.ts') },
  perplexity: { summary: 'measure perplexity (and KL divergence) on a text', load: () => import('./perplexity.ts') },
  bench: { summary: 'prefill/decode tokens per second and bandwidth', load: () => import('./bench.ts') },
  serve: { summary: 'OpenAI-compatible HTTP server with a chat page', load: () => import('./serve.ts') },
  pull: { summary: 'download a GGUF with resume and sha256 check', load: () => import('./pull.ts') },
};

export function usage(): string {
  const w = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: qllm <command> [options]   (qllm <command> --help for its options)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(w)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module');
    console.log(createRequire(import.meta.url)('../../package.json').version);
    return 0;
  }
  const cmd = commands[name];
  try {
    if (!cmd) throw new UsageError(`unknown command '${name}': run 'qllm --help' for the list`);
    const mod = await cmd.load();
    await mod.run(rest);
    return 0;
  } catch (e) {
    if (isQllmError(e)) {
      console.error(`qllm: ${e.message}`);
      return 1;
    }
    if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return 0; // stdout closed early (| head)
    console.error(`qllm: internal error (please report it): ${(e as Error)?.stack ?? e}`);
    return 2;
  }
}
