// `qllm info <model.gguf> [-c N] [--json]`: what the file is, what quantization
// saves, and how much GPU memory running it takes.
import { UsageError } from '../errors.ts';
import { describeModel, formatBytes, formatCount, formatWeightSavings, type ModelReport } from '../info.ts';
import { checkKvType, parseKvType } from '../models/kv-cache.ts';
import { openModelFile } from '../open.ts';
import { num, parse, positionals } from './args.ts';

const HELP = `usage: qllm info <model.gguf> [-c N] [--kv-type T] [--json]
  Prints architecture, hyperparameters, tokenizer, parameter count, tensor types,
  bits per weight, the memory-savings table (stored vs F16/F32, KV cache) and
  the GPU memory 'qllm run' takes at most: weights + KV cache + activations.
  -c, --ctx N      context length for that total (default as 'qllm run': min(model, 2048))
  --kv-type T      KV cache type for that total: f16 (default), f32, q8_0, q4_0
  --json           one JSON object with the same figures (keys documented in README.md)`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals: pos } = parse(argv, { json: { type: 'boolean' }, ctx: { type: 'string', short: 'c' }, 'kv-type': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, 'info');
  if (values.help) return void console.log(HELP);
  const [path] = positionals(pos, ['model.gguf'], 'info');
  const ctx = num(values.ctx, '-c', { min: 2, integer: true, example: 2048 });
  const kvType = parseKvType(values['kv-type'], '--kv-type');
  const file = await openModelFile(await (await import('../pull/resolve.ts')).resolveModelArg(path)); // hf: names: the cached file
  try {
    const r = describeModel(file, { contextLength: ctx, kvType });
    const modelCtx = r.hyperparameters.context_length || 2048;
    if (kvType && r.hyperparameters.block_count > 0) checkKvType(kvType, { nKvHeads: r.hyperparameters.head_count_kv, headDim: r.hyperparameters.head_dim });
    if (ctx !== undefined && r.hyperparameters.block_count > 0 && ctx > modelCtx) throw new UsageError(`-c ${ctx} exceeds the model's context of ${modelCtx}: pass -c ${modelCtx} or less`);
    console.log(values.json ? JSON.stringify(r, null, 2) : formatReport(r));
  } finally {
    await file.close();
  }
}

export function formatReport(r: ModelReport): string {
  const h = r.hyperparameters;
  const m = r.memory;
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
  const row = (label: string, bytes: number, note = '') => `  ${label.padEnd(22)} ${formatBytes(bytes).padStart(12)}  ${note}`;
  const lines = [
    `${r.file}  (GGUF v${r.gguf_version}, ${formatBytes(r.file_bytes)})`,
    `  architecture  ${r.architecture}${r.name ? `  "${r.name}"` : ''}`,
  ];
  if (h.block_count > 0) {
    lines.push(
      `  shape         ${h.block_count} blocks, dim ${h.embedding_length}, ffn ${h.feed_forward_length}, ${h.head_count} heads (${h.head_count_kv} KV, head dim ${h.head_dim})`,
      `  context       ${h.context_length} tokens; rope dim ${h.rope_dim}, base ${h.rope_freq_base}; rms eps ${+h.rms_eps.toPrecision(4)}`,
      `  family        ${r.family.supported ? r.family.quirks : `not supported: ${r.family.error}`}`,
    );
  }
  lines.push(
    `  tokenizer     ${r.tokenizer ? `${r.tokenizer.model}, ${r.tokenizer.vocab_size} tokens${r.tokenizer.chat_template ? ', chat template' : ''}` : 'none'}`,
    `  parameters    ${formatCount(r.parameters)} in ${r.tensor_count} tensors, ${r.bits_per_weight.toFixed(2)} bits per weight`,
    ...(r.experts ? [`  active        ${formatCount(r.active_parameters)} parameters per token (top-${r.experts.used} of ${r.experts.count} experts), ${formatBytes(r.active_weight_bytes)} of weights read per token`] : []),
    '',
    r.tensor_count ? '  tensor types' : '  no tensors (a vocabulary-only file)',
    ...Object.entries(r.tensor_types)
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .map(([t, e]) => `    ${t.padEnd(8)} ${String(e.count).padStart(5)} tensors ${formatBytes(e.bytes).padStart(12)}`),
    '',
    '  memory                        bytes  vs F16',
    row('weights as stored', m.weights_stored_bytes, pct(m.weights_stored_bytes, m.weights_f16_bytes)),
    row('weights in F16', m.weights_f16_bytes, '100%'),
    row('weights in F32', m.weights_f32_bytes, pct(m.weights_f32_bytes, m.weights_f16_bytes)),
    row(`KV cache f16 @${h.context_length}`, m.kv_cache_f16_bytes),
    row(`KV cache f32 @${h.context_length}`, m.kv_cache_f32_bytes),
    ...(['q8_0', 'q4_0'] as const).flatMap((t) => {
      const b = m[`kv_cache_${t}_bytes`];
      return b === null ? [] : [row(`KV cache ${t} @${h.context_length}`, b, `${pct(b, m.kv_cache_f16_bytes)} of KV f16`)];
    }),
  );
  if (m.weights_stored_bytes > 0) lines.push(`  ${formatWeightSavings(m.weights_stored_bytes, m.weights_f16_bytes)}`);
  const run = m.run;
  if (run) {
    lines.push(
      '',
      `  running it at -c ${run.context_length} takes up to ${formatBytes(run.total_bytes)} of GPU memory (what --memory-budget is checked against):`,
      `    weights ${formatBytes(run.weights_bytes)} + KV cache ${run.kv_type} ${formatBytes(run.kv_bytes)}${run.kv_type === 'f16' ? '' : ` (f16 would need ${formatBytes(run.kv_f16_bytes)})`} + activations and buffers ${formatBytes(run.activations_bytes)}`,
    );
    // Only the default follows the adapter: an asked-for type is the same everywhere.
    if (run.kv_type === 'f16') lines.push(`    (${formatBytes(run.total_f32_kv_bytes)} where the adapter lacks shader-f16: KV cache f32 ${formatBytes(run.kv_f32_bytes)})`);
  }
  return lines.join('\n');
}
