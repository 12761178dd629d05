// npm run make-model -- [--arch llama|qwen2|qwen3|gemma|gemma2|gemma3|phi3|granite|smollm3|olmo2|qwen3moe|mixtral|olmoe|gpt-oss|qwen2moe] [--preset tiny|qwen2.5-0.5b|moe-bench|…]
//                       [--experts N --experts-used K --expert-ffn N]   (MoE arches; --type mxfp4_moe: MXFP4 experts, Q8_0 elsewhere)
//                       [--shared-ffn N]                               (qwen2moe: the shared expert's FFN width)
//                       [--dim N --layers N --heads N --kv-heads N --head-dim N --ffn N --vocab N|<vocab.gguf> --ctx N]
//                       [--type f32|f16|bf16|q4_0|…|q4_k_m] [--tied|--untied] [--init flat|wide] [--logit-std X] [--std X]
//                       [--rope-base X] [--rope-scaling none|linear|yarn|longrope] [--rope-factor X] [--rope-orig-ctx N] [--rope-freqs]
//                       [--sliding-window N] [--swa-pattern N] [--attn-softcap X] [--final-softcap X] [--seed N] [--name S] -o out.gguf
// Writes a random-weight GGUF of any supported architecture (see src/synth/make-model.ts and families.ts).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isQllmError, UsageError } from '../src/errors.ts';
import { ARCHES, MODEL_TYPES, MOE_ARCHES, makeModel, PRESETS, type RopeScalingKind } from '../src/synth/make-model.ts';

const usage = `usage: npm run make-model -- [--arch ${[...ARCHES, ...MOE_ARCHES].join('|')}] [--preset ${Object.keys(PRESETS).join('|')}] [--dim N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N] [--ffn N] [--experts N] [--experts-used K] [--expert-ffn N] [--shared-ffn N] [--vocab N|vocab.gguf] [--ctx N] [--type ${MODEL_TYPES.join('|')}] [--tied|--untied] [--init flat|wide] [--logit-std X] [--std X] [--rope-base X] [--rope-scaling none|linear|yarn|longrope] [--rope-factor X] [--rope-orig-ctx N] [--rope-freqs] [--sliding-window N] [--swa-pattern N] [--attn-softcap X] [--final-softcap X] [--seed N] [--name S] -o out.gguf`;

const INTS = ['dim', 'layers', 'heads', 'kv-heads', 'head-dim', 'ffn', 'ctx', 'seed', 'rope-orig-ctx', 'sliding-window', 'swa-pattern', 'experts', 'experts-used', 'expert-ffn', 'shared-ffn'] as const;
const NUMS = ['logit-std', 'std', 'rope-base', 'rope-factor', 'attn-softcap', 'final-softcap'] as const;

async function main(): Promise<void> {
  let a: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: process.argv.slice(2),
      options: {
        ...Object.fromEntries([...INTS, ...NUMS].map((k) => [k, { type: 'string' as const }])),
        arch: { type: 'string' }, preset: { type: 'string' }, vocab: { type: 'string' }, type: { type: 'string' }, name: { type: 'string' },
        init: { type: 'string' }, 'rope-scaling': { type: 'string' }, out: { type: 'string', short: 'o' },
        tied: { type: 'boolean' }, untied: { type: 'boolean' }, 'rope-freqs': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  }
  try {
    a = parse();
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} — ${usage}`);
  }
  const v = a.values as Record<string, string | boolean | undefined>;
  if (v.help) { console.log(usage); return; }
  if (!v.out) throw new UsageError(`missing -o out.gguf — ${usage}`);
  if (v.tied && v.untied) throw new UsageError('--tied and --untied exclude each other');
  const int = (flag: string) => {
    const s = v[flag] as string | undefined;
    if (s === undefined) return undefined;
    const n = Number(s);
    const min = flag === 'seed' || flag === 'swa-pattern' ? 0 : 1;
    if (!/^\d+$/.test(s) || !Number.isInteger(n) || n < min) throw new UsageError(`--${flag} ${s} is not a ${min ? 'positive' : 'non-negative'} integer`);
    return n;
  };
  const num = (flag: string) => {
    const s = v[flag] as string | undefined;
    if (s === undefined) return undefined;
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} ${s} is not a positive number`);
    return n;
  };
  const vocab = v.vocab as string | undefined;
  const vocabIsFile = vocab !== undefined && (!/^\d+$/.test(vocab) || existsSync(vocab));
  const vocabN = vocabIsFile || vocab === undefined ? undefined : Number(vocab);
  if (vocabN !== undefined && vocabN < 1) throw new UsageError(`--vocab ${vocab} is not a positive integer`);
  const init = v.init as string | undefined;
  if (init !== undefined && init !== 'flat' && init !== 'wide') throw new UsageError(`--init ${init} is not one of flat, wide`);
  const t0 = performance.now();
  const made = await makeModel({
    out: v.out as string, arch: v.arch as string | undefined, preset: v.preset as string | undefined, type: v.type as string | undefined,
    name: v.name as string | undefined, seed: int('seed'),
    dim: int('dim'), layers: int('layers'), heads: int('heads'), kvHeads: int('kv-heads'), headDim: int('head-dim'), ffn: int('ffn'), ctx: int('ctx'),
    experts: int('experts'), expertsUsed: int('experts-used'), expertFfn: int('expert-ffn'), sharedFfn: int('shared-ffn'),
    vocab: vocabN, vocabFile: vocabIsFile ? vocab : undefined,
    tied: v.tied ? true : v.untied ? false : undefined, init, logitStd: num('logit-std'), std: num('std'),
    ropeBase: num('rope-base'), ropeScaling: v['rope-scaling'] as RopeScalingKind | undefined, ropeFactor: num('rope-factor'), ropeOrigCtx: int('rope-orig-ctx'),
    ropeFreqs: v['rope-freqs'] ? true : undefined, slidingWindow: int('sliding-window'), swaPattern: int('swa-pattern'),
    attnSoftcap: num('attn-softcap'), finalSoftcap: num('final-softcap'),
    log: (l) => console.error(l),
  });
  const s = made.shape;
  const l = made.layout;
  const counts = new Map<string, number>();
  for (const t of made.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  console.log(`wrote ${made.path}: ${(made.bytes / 2 ** 20).toFixed(1)} MiB (${made.bytes} bytes) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`  ${made.arch}: dim ${s.dim}, ${s.layers} layers, ${s.heads} heads, ${s.kvHeads} kv heads, head size ${s.headDim}, ffn ${s.ffn}, vocab ${s.vocab}, ctx ${s.ctx}`);
  if (s.experts) console.log(`  experts: ${s.experts} per layer, top-${s.expertsUsed}${s.expertFfn ? `, expert ffn ${s.expertFfn}` : ''}${s.sharedFfn ? `, shared expert ffn ${s.sharedFfn}` : ''}`);
  const extras = [
    l.tied ? 'tied output' : 'output.weight', `${l.init} init`, l.ropeScaling !== 'none' ? `rope ${l.ropeScaling}` : '', l.ropeFreqs ? 'rope_freqs' : '',
    l.slidingWindow !== undefined ? `window ${l.slidingWindow}` : '',
  ].filter(Boolean);
  console.log(`  ${extras.join(', ')}`);
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
