// `qllm ls [--json]`: the models in the download cache (hf: names given to run,
// chat, serve, …), with their sizes; interrupted downloads are marked.
import { cacheRoot, listCached } from '../pull/resolve.ts';
import { fmtBytes } from '../pull/progress.ts';
import { parse, positionals } from './args.ts';

const HELP = `usage: qllm ls [--json]
  Lists the models in the cache with their sizes. 'qllm run hf:owner/repo/file.gguf'
  (and chat, serve, info, bench, …) downloads a model there on first use.
  The cache is $QLLM_CACHE, else $XDG_CACHE_HOME/qllm, else ~/.cache/qllm.
  'qllm rm <name>' removes one.
  --json   print [{ name, path, bytes, partial }]`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals: pos } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'ls');
  if (values.help) return void console.log(HELP);
  positionals(pos, [], 'ls');
  const root = cacheRoot();
  const models = await listCached(root);
  if (values.json) return void console.log(JSON.stringify(models, null, 2));
  if (models.length === 0) {
    process.stderr.write(`qllm: no models in the cache ${root}; 'qllm run hf:owner/repo/file.gguf' downloads one there\n`);
    return;
  }
  const w = Math.max(4, ...models.map((m) => m.name.length));
  console.log(`${'NAME'.padEnd(w)}  ${'SIZE'.padStart(10)}`);
  for (const m of models) console.log(`${m.name.padEnd(w)}  ${fmtBytes(m.bytes).padStart(10)}${m.partial ? '  (partial download: running it resumes)' : ''}`);
  const whole = models.filter((m) => !m.partial);
  process.stderr.write(`qllm: ${whole.length} model${whole.length === 1 ? '' : 's'}, ${fmtBytes(models.reduce((a, m) => a + m.bytes, 0))} in ${root}\n`);
}
