// `qllm tokenize <model.gguf> [TEXT] [--json] [--no-bos]`: ids for checks against
// other tools (llama.cpp's llama-tokenize prints the same ids). No GPU needed.
// Without TEXT it reads the text from stdin (`printf 'Hello' | qllm tokenize m.gguf`).
import { readConfig } from '../config.ts';
import { GgufError, UsageError } from '../errors.ts';
import { openModelFile } from '../open.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { parse, positionals } from './args.ts';

const HELP = `usage: qllm tokenize <model.gguf> [TEXT] [--json] [--no-bos] [--pieces]
  TEXT       the text; without it, stdin is read (as is, trailing newline included)
  --json     print {"ids": [...], "pieces": [...]}
  --no-bos   do not add the BOS token
  --pieces   print "id piece" per line`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(argv, { json: { type: 'boolean' }, 'no-bos': { type: 'boolean' }, pieces: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'tokenize');
  if (v.help) return void console.log(HELP);
  const [path, arg] = pos.length === 1 && !process.stdin.isTTY ? [pos[0], undefined] : positionals(pos, ['model.gguf', 'text'], 'tokenize');
  const text = arg ?? (await readStdin());
  const file = await openModelFile(await (await import('../pull/resolve.ts')).resolveModelArg(path)); // hf: names: the cached file
  try {
    const cfg = readConfig(file);
    if (!cfg.tokenizer) throw new GgufError(`${path} has no tokenizer (tokenizer.ggml.model is missing): use a GGUF converted with its vocabulary`);
    const tok = Tokenizer.fromConfig(cfg.tokenizer);
    const ids = tok.encode(text, { addBos: v['no-bos'] ? false : undefined });
    if (v.json) console.log(JSON.stringify({ ids, pieces: ids.map((i) => tok.tokenText(i)) }));
    else if (v.pieces) for (const i of ids) console.log(`${i} ${JSON.stringify(tok.tokenText(i))}`);
    else console.log(ids.join(' '));
  } finally {
    await file.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  if (chunks.length === 0) throw new UsageError("no text: pass it after the model (qllm tokenize model.gguf 'Hello') or pipe it in");
  return Buffer.concat(chunks).toString('utf8');
}
