// `qllm bench <model.gguf> [-p 64] [-n 32] [-r 3] [--json]`, in the manner of llama-bench:
// prefill tok/s for a p-token prompt, decode tok/s for n tokens (greedy, argmax on
// the GPU), each the median over r repetitions after a warm-up; the weight
// bandwidth decode achieves, next to the adapter's own copy bandwidth.
import { readConfig } from '../config.ts';
import { copyBandwidth } from '../gpu/bandwidth.ts';
import { UsageError } from '../errors.ts';
import { formatBytes, formatWeightSavings } from '../info.ts';
import { openModelFile } from '../open.ts';
import { resolveModelArg } from '../pull/resolve.ts';
import { num, parse, positionals } from './args.ts';
import { loadForCli, modelFlags } from './run.ts';

const HELP = `usage: qllm bench <model.gguf> [-p 64] [-n 32] [-r 3] [-c CTX] [--json] [--profile]
  -p N       prompt tokens for the prefill test (default 64)
  -n N       tokens for the decode test (default 32)
  -r N       repetitions (default 3); figures are the median, spread is min..max
  -c N       context length (KV cache) to load with (default max(256, p + n + 1),
             at most the model's own)
  --json     print one JSON object with the same figures
  --profile  after the timed runs, GPU time per step (timestamp queries) for
             one prefill and the decode tokens, with GB/s per weight matrix
  --no-f16   force the f32 shader path
  --kv-type T         KV cache type: f16 (default), f32, q8_0, q4_0
  --memory-budget B   refuse to load past B bytes of GPU memory (e.g. 2G)`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** The model's own context length from its header (Infinity when it does not say). */
async function modelContext(path: string): Promise<number> {
  const file = await openModelFile(path);
  try {
    return readConfig(file).contextLength || Number.POSITIVE_INFINITY;
  } finally {
    await file.close();
  }
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(argv, { ...modelFlags, prompt: { type: 'string', short: 'p' }, n: { type: 'string', short: 'n' }, reps: { type: 'string', short: 'r' }, json: { type: 'boolean' }, profile: { type: 'boolean' } }, 'bench');
  if (v.help) return void console.log(HELP);
  const [spec] = positionals(pos, ['model.gguf'], 'bench');
  const path = await resolveModelArg(spec); // hf:owner/repo/file.gguf: the cached file
  const p = num(v.prompt, '-p', { min: 1, integer: true, dflt: 64 })!;
  const n = num(v.n, '-n', { min: 1, integer: true, dflt: 32 })!;
  const r = num(v.reps, '-r', { min: 1, integer: true, dflt: 3 })!;
  // Without -c: room for the test, but never more than the model allows (stories260K-q4_0: 128).
  const given = num(v.ctx, '-c', { min: 2, integer: true });
  const ctx = given ?? Math.min(Math.max(256, p + n + 1), await modelContext(path));
  if (ctx < p + n) {
    if (given === undefined) throw new UsageError(`the model's context is ${ctx} tokens, too small for a ${p}-token prompt and ${n} decoded tokens: lower -p/-n so that p + n ≤ ${ctx}`);
    throw new UsageError(`-c ${ctx} is too small for a ${p}-token prompt and ${n} decoded tokens: pass -c ${p + n} or more, or lower -p/-n`);
  }
  const t0 = performance.now();
  const { model, loadMs } = await loadForCli(path, { ...v, ctx: String(ctx) });
  try {
    const llama = model.llama;
    const vocab = model.config.vocabSize;
    // Deterministic pseudo-random prompt that avoids the special ids at the start of the vocabulary.
    const prompt = Array.from({ length: p }, (_, i) => 3 + ((i * 7919 + 13) % Math.max(1, vocab - 3)));
    const first = await llama.forwardArgmax([prompt[0]], 0);
    const ttftMs = performance.now() - t0; // load + pipeline warm-up + one token
    void first;

    const prefill: number[] = [];
    const decode: number[] = [];
    for (let rep = -1; rep < r; rep++) {
      let t = performance.now();
      let id = await llama.forwardArgmax(prompt, 0);
      const pf = performance.now() - t;
      t = performance.now();
      for (let i = 0; i < n; i++) id = await llama.forwardArgmax([id], p + i, { next: i < n - 1 });
      const dc = performance.now() - t;
      if (rep >= 0) {
        prefill.push((p / pf) * 1000);
        decode.push((n / dc) * 1000);
      }
    }

    // Bytes of weights one decode token reads: every matrix product's weights as
    // stored in the file (the embedding only when it doubles as the output; its
    // gather reads one row).
    let weightBytes = 0;
    for (const b of llama.weightBytesByStep().values()) weightBytes += b;
    const decodeTokS = median(decode);
    const weightGBs = (weightBytes * decodeTokS) / 1e9;
    const copyGBs = await copyBandwidth(model.engine);
    const profile = v.profile ? await profileSteps(model, prompt, n) : undefined;
    const mem = model.memory();
    const result = {
      model: path, adapter: model.info.adapter, prompt_tokens: p, decode_tokens: n, reps: r,
      prefill_tok_s: { median: median(prefill), min: Math.min(...prefill), max: Math.max(...prefill) },
      decode_tok_s: { median: decodeTokS, min: Math.min(...decode), max: Math.max(...decode) },
      weight_bytes_per_token: weightBytes, decode_weight_gb_s: weightGBs, copy_gb_s: copyGBs, bandwidth_utilisation: weightGBs / copyGBs,
      // One dispatch per layer in decode (CPU kernels' decode chains, ARCHITECTURE.md).
      decode_chained: llama.chained,
      ttft_ms: ttftMs, load_ms: loadMs, gpu_bytes: mem, f16_weight_bytes: model.info.f16WeightBytes,
      ...(profile ? { profile } : {}),
    };
    if (v.json) return void console.log(JSON.stringify(result));
    const f = (x: { median: number; min: number; max: number }) => `${x.median.toFixed(2)} tok/s (${x.min.toFixed(2)}..${x.max.toFixed(2)})`;
    console.log([
      `model    ${path}`,
      `adapter  ${model.info.adapter}`,
      `prefill  pp${p}: ${f(result.prefill_tok_s)}`,
      `decode   tg${n}: ${f(result.decode_tok_s)}${llama.chained ? ', one dispatch per layer' : ''}`,
      `weights  ${formatBytes(weightBytes)} read per token -> ${weightGBs.toFixed(2)} GB/s; copy bandwidth ${copyGBs.toFixed(2)} GB/s; utilisation ${(100 * result.bandwidth_utilisation).toFixed(1)}%`,
      `ttft     ${ttftMs.toFixed(0)} ms including load (${loadMs.toFixed(0)} ms) and pipeline creation`,
      `memory   ${formatWeightSavings(mem.weights, model.info.f16WeightBytes)}; kv ${formatBytes(mem.kv)}, activations ${formatBytes(mem.activations)}, total ${formatBytes(mem.total)}`,
    ].join('\n'));
    if (profile) console.log(profileTable(profile));
  } finally {
    model.dispose();
  }
}

interface StepProfile { step: string; prefill_ms: number; decode_ms_per_token: number; decode_share: number; weight_bytes?: number; decode_gb_s?: number }

/** One profiled prefill of the prompt and n decode steps; per-step GPU ms. */
async function profileSteps(model: Awaited<ReturnType<typeof loadForCli>>['model'], prompt: number[], n: number): Promise<StepProfile[] | undefined> {
  const llama = model.llama;
  if (!llama.enableProfile()) return undefined;
  let id = await llama.forwardArgmax(prompt, 0);
  const pre = llama.takeProfile();
  for (let i = 0; i < n; i++) id = await llama.forwardArgmax([id], prompt.length + i);
  const dec = llama.takeProfile();
  const bytes = llama.decodeStepBytes();
  const total = [...dec.values()].reduce((s, x) => s + x.ms, 0);
  // Steps of either phase, in order of first appearance (decode skips the norms it fuses).
  const steps = [...new Set([...pre.keys(), ...dec.keys()])];
  return steps.map((step) => {
    const d = dec.get(step) ?? { ms: 0, count: 0 };
    const perTok = d.ms / n;
    const wb = bytes.get(step);
    return {
      step, prefill_ms: pre.get(step)?.ms ?? 0, decode_ms_per_token: perTok, decode_share: d.ms / total,
      ...(wb && perTok > 0 ? { weight_bytes: wb, decode_gb_s: wb / (perTok / 1000) / 1e9 } : {}),
    };
  });
}

function profileTable(rows: StepProfile[] | undefined): string {
  if (!rows) return 'profile  not available: the adapter has no timestamp-query';
  const lines = ['step          prefill ms   decode ms/tok   share    GB/s'];
  for (const r of rows) {
    lines.push(`${r.step.padEnd(12)} ${r.prefill_ms.toFixed(2).padStart(11)} ${r.decode_ms_per_token.toFixed(3).padStart(15)} ${(100 * r.decode_share).toFixed(1).padStart(6)}% ${r.decode_gb_s ? r.decode_gb_s.toFixed(2).padStart(7) : '      -'}`);
  }
  const sum = rows.reduce((s, r) => s + r.decode_ms_per_token, 0);
  lines.push(`GPU total    ${rows.reduce((s, r) => s + r.prefill_ms, 0).toFixed(2).padStart(11)} ${sum.toFixed(3).padStart(15)}`);
  return lines.join('\n');
}
