// `qllm pull <url | hf:owner/repo[@rev]/path/file.gguf> [-o DIR] [--sha256 HEX]`
// Downloads with a progress bar (TTY only), resumes from <file>.part, verifies the
// sha256 (given or the hub's) and that the file is a whole GGUF, and prints the
// final path on stdout.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import { download } from '../pull/download.ts';
import { downloadProgress, fmtBytes, verifiedText } from '../pull/progress.ts';
import { resolveSource } from '../pull/source.ts';
import { num, parse, positionals } from './args.ts';

const HELP = `usage: qllm pull <url | hf:owner/repo[@revision]/path/file.gguf> [options]
  Downloads a GGUF over HTTP(S). An interrupted download resumes from <file>.part
  (only if the server's file is unchanged: ETag / Last-Modified); the file gets its
  final name only once complete, verified and parsed as a whole GGUF.
  -o, --output DIR   directory to save into (default: current directory)
  --sha256 HEX       expected sha256 (otherwise the hub's LFS sha256 is used when sent)
  --retries N        automatic resumes after a dropped connection (default 3)
  HF_TOKEN           environment variable: token for gated or private hub repos
  HF_ENDPOINT        environment variable: the hub to use for hf: (default https://huggingface.co)
  'qllm run hf:owner/repo/file.gguf' (and chat, serve, info, bench, ...) downloads into the
  model cache instead; 'qllm ls' lists it, 'qllm rm' removes from it.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals: pos } = parse(argv, {
    output: { type: 'string', short: 'o' },
    sha256: { type: 'string' },
    retries: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 'pull');
  if (values.help) return void console.log(HELP);
  const [spec] = positionals(pos, ['url | hf:owner/repo/path/file.gguf'], 'pull');
  if (values.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.sha256)) throw new UsageError(`--sha256 ${values.sha256} is not 64 hex digits: pass the file's sha256 (e.g. from the hub's file page)`);
  const src = resolveSource(spec);
  const dir = resolve(values.output ?? '.');
  await mkdir(dir, { recursive: true }).catch((e) => { throw new UsageError(`cannot create -o ${dir}: ${(e as Error).message}`); });
  const dest = join(dir, src.fileName);
  const progress = downloadProgress(src.fileName, 'qllm pull');
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  try {
    const r = await download({
      url: src.url, dest, sha256: values.sha256, signal: ac.signal,
      retries: num(values.retries, '--retries', { min: 0, max: 100, integer: true, dflt: 3 }),
      onProgress: progress.onProgress,
      log: progress.log,
    });
    progress.done();
    process.stderr.write(r.status === 'present' ? `qllm pull: ${dest} is already here and identical; nothing to do\n` : `qllm pull: ${fmtBytes(r.bytes)} saved, ${verifiedText(r)}\n`);
    console.log(r.path);
  } finally {
    progress.done();
    process.off('SIGINT', onSig);
  }
}
