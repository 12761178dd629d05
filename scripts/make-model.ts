// npm run make-model -- [--preset tiny|s110m|tinyllama] [--dim N --layers N --heads N --kv-heads N --ffn N --vocab N|<vocab.gguf> --ctx N]
//                       [--type f32|f16|bf16|q4_0|…|q4_k_m] [--seed N] -o out.gguf
// Writes a random-weight Llama GGUF (see src/synth/make-model.ts).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isQllmError, UsageError } from '../src/errors.ts';
import { MODEL_TYPES, makeModel, PRESETS } from '../src/synth/make-model.ts';

const usage = `usage: npm run make-model -- [--preset ${Object.keys(PRESETS).join('|')}] [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ffn N] [--vocab N|vocab.gguf] [--ctx N] [--type ${MODEL_TYPES.join('|')}] [--seed N] [--name S] -o out.gguf`;

async function main(): Promise<void> {
  let a: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: process.argv.slice(2),
      options: {
        preset: { type: 'string' }, dim: { type: 'string' }, layers: { type: 'string' }, heads: { type: 'string' },
        'kv-heads': { type: 'string' }, ffn: { type: 'string' }, vocab: { type: 'string' }, ctx: { type: 'string' },
        type: { type: 'string' }, seed: { type: 'string' }, name: { type: 'string' }, out: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  }
  try {
    a = parse();
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} — ${usage}`);
  }
  const v = a.values;
  if (v.help) { console.log(usage); return; }
  if (!v.out) throw new UsageError(`missing -o out.gguf — ${usage}`);
  const int = (flag: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < (flag === '--seed' ? 0 : 1)) throw new UsageError(`${flag} ${s} is not a positive integer`);
    return n;
  };
  const vocabIsFile = v.vocab !== undefined && (!/^\d+$/.test(v.vocab) || existsSync(v.vocab));
  const t0 = performance.now();
  const made = await makeModel({
    out: v.out, preset: v.preset, type: v.type, name: v.name, seed: int('--seed', v.seed),
    dim: int('--dim', v.dim), layers: int('--layers', v.layers), heads: int('--heads', v.heads), kvHeads: int('--kv-heads', v['kv-heads']),
    ffn: int('--ffn', v.ffn), ctx: int('--ctx', v.ctx),
    vocab: vocabIsFile ? undefined : int('--vocab', v.vocab), vocabFile: vocabIsFile ? v.vocab : undefined,
    log: (l) => console.error(l),
  });
  const s = made.shape;
  const counts = new Map<string, number>();
  for (const t of made.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  console.log(`wrote ${made.path}: ${(made.bytes / 2 ** 20).toFixed(1)} MiB (${made.bytes} bytes) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`  dim ${s.dim}, ${s.layers} layers, ${s.heads} heads, ${s.kvHeads} kv heads, ffn ${s.ffn}, vocab ${s.vocab}, ctx ${s.ctx}`);
  console.log(`  tensors: ${[...counts].map(([t, n]) => `${n} × ${t}`).join(', ')}`);
}

main().catch((e) => {
  if (isQllmError(e)) {
    console.error(`make-model: ${e.message}`);
    process.exit(1);
  }
  console.error(e);
  process.exit(2);
});
