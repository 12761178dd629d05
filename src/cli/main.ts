// `qllm <command> …`: dispatches to src/cli/<command>.ts and turns qllm's own
// errors into one line on stderr and exit code 1. Anything else is a bug, and
// is printed with its stack so that it can be reported.
import { isQllmError, printable, UsageError } from '../errors.ts';
import { closest } from './args.ts';

// Each command lives in src/cli/<name>.ts and exports run(argv).
type CommandModule = { run(argv: string[]): Promise<void> };

const commands: Record<string, string> = {
  run: 'generate text from a prompt',
  chat: 'interactive multi-turn chat',
  info: 'describe a GGUF file, the memory quantization saves and what running it takes',
  tokenize: 'print the token ids of a text',
  gpu: 'show the WebGPU adapter, its features and limits',
  quantize: 'quantize an F32/F16 GGUF to Q4_0, Q4_K_M, Q8_0, …',
  perplexity: 'measure perplexity (and KL divergence) on a text',
  bench: 'prefill/decode tokens per second and bandwidth',
  serve: 'OpenAI-compatible HTTP server with a chat page',
  pull: 'download a GGUF with resume and sha256 check',
  ls: 'list the models downloaded by hf: names, with sizes',
  rm: 'remove a model from the download cache',
};

/**
 * Thrown by a command the user stopped with Ctrl-C after it printed what it had
 * (a partial completion, a chat): the exit code is 130, as a shell reports a
 * command killed by SIGINT, whether Ctrl-C came during the load or later.
 */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

export function usage(): string {
  const w = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: qllm <command> [options]   (qllm <command> --help or qllm help <command> for its options)',
    '',
    ...Object.entries(commands).map(([name, summary]) => `  ${name.padEnd(w)}  ${summary}`),
  ].join('\n');
}

/**
 * Output into a closed pipe (`qllm run … | head`) ends the program quietly, as
 * SIGPIPE ends a Unix tool; without a listener Node raises the stream's EPIPE
 * as an uncaught 'error' event with a stack trace.
 */
let quiet = false;
function quietOnClosedPipe(): void {
  if (quiet) return; // once per process, however often main() runs
  quiet = true;
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe();
  let [name, ...rest] = argv;
  // `qllm help run` is `qllm run --help`.
  if (name === 'help' && rest.length > 0) [name, rest] = [rest[0], ['--help']];
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module');
    console.log(createRequire(import.meta.url)('../../package.json').version);
    return 0;
  }
  try {
    if (!Object.hasOwn(commands, name)) {
      const near = closest(name, Object.keys(commands));
      throw new UsageError(`unknown command '${name}'${near ? `: did you mean '${near}'?` : ''} — run 'qllm --help' for the list`);
    }
    const mod = (await import(`./${name}.ts`)) as CommandModule;
    await mod.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof Interrupted) return 130;
    if (isQllmError(e)) {
      // One line, whatever a file string inside it holds (control bytes, ESC, CR/LF).
      console.error(`qllm: ${printable(e.message, 2000)}`);
      return 1;
    }
    if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return 0; // stdout closed early (| head)
    console.error(`qllm: internal error (please report it): ${(e as Error)?.stack ?? e}`);
    return 2;
  }
}
