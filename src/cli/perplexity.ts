// `qllm perplexity <model.gguf> -f text.txt [-c CTX] [--chunks N] [--json]`
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import { perplexity } from '../perplexity.ts';
import { num, parse, positionals } from './args.ts';
import { loadForCli, modelFlags } from './run.ts';

const HELP = `usage: qllm perplexity <model.gguf> -f text.txt [-c CTX] [--chunks N] [--json]
  Splits the text into chunks of CTX tokens, scores the second half of each.
  -f, --file FILE             the text to score
  -c, --ctx N                 chunk length in tokens (default 128)
  --chunks N                  score only the first N chunks (default all)
  --json                      print one JSON object (ppl, ppl_error, chunks, ...) instead of text
  --no-f16                    force the f32 shader path
  --kv-type T                 KV cache type: f16 (default), f32, q8_0, q4_0
  --memory-budget B           refuse to load past B bytes of GPU memory (e.g. 2G)
  --kl-divergence-base FILE   save this (base) model's log-probabilities to FILE
  --kl-divergence FILE        compare against a base FILE: mean KLD and top-1 agreement`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(argv, {
    ...modelFlags,
    file: { type: 'string', short: 'f' },
    chunks: { type: 'string' },
    json: { type: 'boolean' },
    'kl-divergence-base': { type: 'string' },
    'kl-divergence': { type: 'string' },
  }, 'perplexity');
  if (v.help) return void console.log(HELP);
  const [path] = positionals(pos, ['model.gguf'], 'perplexity');
  if (!v.file) throw new UsageError('no text: pass -f text.txt');
  const ctx = num(v.ctx, '-c', { min: 8, integer: true, dflt: 128 })!;
  const chunks = num(v.chunks, '--chunks', { min: 1, integer: true });
  let text: string;
  try {
    text = await readFile(v.file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${v.file}: check the path`);
  }
  const { model } = await loadForCli(path, { ...v, ctx: String(ctx) });
  try {
    const tokens = model.tokenize(text, { addBos: true });
    const r = await perplexity(model.llama, tokens, model.config.vocabSize, {
      ctx, chunks, bosId: model.tokenizer.bosId,
      saveBase: v['kl-divergence-base'], compareBase: v['kl-divergence'],
      onChunk: (i, n, p) => { if (!v.json) process.stderr.write(`[${i}/${n}] ${p.toFixed(4)}\n`); },
    });
    if (v.json) {
      console.log(JSON.stringify({ model: path, ppl: r.ppl, ppl_error: r.pplError, chunks: r.chunks, ctx: r.ctx, scored_tokens: r.scoredTokens, tok_s: r.tokPerS,
        ...(r.kld ? { kld_mean: r.kld.mean, kld_error: r.kld.meanError, top1_agreement: r.kld.top1Agreement } : {}) }));
    } else {
      console.log(`PPL = ${r.ppl.toFixed(4)} +/- ${r.pplError.toFixed(4)}  (${r.chunks} chunks of ${r.ctx}, ${r.scoredTokens} tokens scored, ${r.tokPerS.toFixed(1)} tok/s)`);
      if (r.kld) console.log(`KLD = ${r.kld.mean.toFixed(6)} +/- ${r.kld.meanError.toFixed(6)}, top-1 agreement ${(100 * r.kld.top1Agreement).toFixed(2)}%`);
    }
  } finally {
    model.dispose();
  }
}
