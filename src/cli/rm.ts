// `qllm rm <name>…`: removes models (and interrupted downloads of them) from the
// download cache; names as `qllm ls` prints them, with or without `hf:`.
import { UsageError } from '../errors.ts';
import { fmtBytes } from '../pull/progress.ts';
import { cacheRoot, findCached, removeCached } from '../pull/resolve.ts';
import { parse } from './args.ts';

const HELP = `usage: qllm rm <name> [<name>…]
  Removes models from the cache, e.g. qllm rm hf:owner/repo/file.gguf
  ('qllm ls' lists the names). Files outside the cache are never touched.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals: names } = parse(argv, { help: { type: 'boolean', short: 'h' } }, 'rm');
  if (values.help) return void console.log(HELP);
  if (names.length === 0) throw new UsageError("missing <name>: usage: qllm rm <name> ('qllm ls' lists the cached models)");
  const root = cacheRoot();
  // Every name is checked first, so that a typo in the second name removes nothing.
  for (const n of names) await findCached(n, root);
  for (const n of names) {
    const freed = await removeCached(n, root);
    process.stderr.write(`qllm: removed ${n.startsWith('hf:') ? n : `hf:${n}`} (${fmtBytes(freed)})\n`);
  }
}
