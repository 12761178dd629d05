// `qllm pull <url | hf:owner/repo[@rev]/path/file.gguf> [-o DIR] [--sha256 HEX]`
// Downloads with a progress bar (TTY only), resumes from <file>.part, verifies the
// sha256 (given or the hub's), and prints the final path on stdout.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import { download } from '../pull/download.ts';
import { resolveSource } from '../pull/source.ts';
import { num, parse, positionals } from './args.ts';
import { progressBar } from './progress.ts';

const HELP = `usage: qllm pull <url | hf:owner/repo[@revision]/path/file.gguf> [options]
  Downloads a GGUF over HTTP(S). An interrupted download resumes from <file>.part;
  the file gets its final name only once complete and verified.
  -o, --output DIR   directory to save into (default: current directory)
  --sha256 HEX       expected sha256 (otherwise the hub's LFS sha256 is used when sent)
  --retries N        automatic resumes after a dropped connection (default 3)
  HF_TOKEN           environment variable: token for gated or private hub repos`;

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
  const bar = progressBar(src.fileName.length > 24 ? `${src.fileName.slice(0, 21)}...` : src.fileName);
  const rate = rateMeter();
  let lastDraw = 0;
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  try {
    const r = await download({
      url: src.url, dest, sha256: values.sha256, signal: ac.signal,
      retries: num(values.retries, '--retries', { min: 0, max: 100, integer: true, dflt: 3 }),
      onProgress: (done, total) => {
        // Redraw at most 10 times a second, and once at the end.
        const now = performance.now();
        if (now - lastDraw < 100 && done !== total) return;
        lastDraw = now;
        bar.update(total ? done / total : 0, rate(done, total));
      },
      log: (l) => { bar.done(); process.stderr.write(`qllm pull: ${l}\n`); },
    });
    bar.done();
    const how = r.verifiedBy === 'none' ? 'no sha256 known, not verified' : `sha256 ${r.sha256} verified (${r.verifiedBy === 'given' ? '--sha256' : 'hub'})`;
    process.stderr.write(r.status === 'present' ? `qllm pull: ${dest} is already here and identical; nothing to do\n` : `qllm pull: ${fmt(r.bytes)} saved, ${how}\n`);
    console.log(r.path);
  } finally {
    bar.done();
    process.off('SIGINT', onSig);
  }
}

/** "1.20 GiB / 2.90 GiB  35.1 MiB/s  ETA 0:48", the rate over the last few seconds. */
function rateMeter() {
  const samples: [number, number][] = [];
  return (done: number, total: number | undefined): string => {
    const now = performance.now();
    samples.push([now, done]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [t0, d0] = samples[0];
    const bps = now > t0 ? ((done - d0) * 1000) / (now - t0) : 0;
    let eta = '';
    if (total && bps > 0) {
      const s = Math.round((total - done) / bps);
      eta = `  ETA ${Math.floor(s / 3600) ? `${Math.floor(s / 3600)}:` : ''}${String(Math.floor(s / 60) % 60).padStart(Math.floor(s / 3600) ? 2 : 1, '0')}:${String(s % 60).padStart(2, '0')}`;
    }
    return `${fmt(done)}${total ? ` / ${fmt(total)}` : ''}  ${fmt(bps)}/s${eta}`;
  };
}

function fmt(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 2 : 0)} ${u[i]}`;
}
