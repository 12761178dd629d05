// `qllm info <model.gguf> [--json]`: what the file is and what quantization saves.
import { describeModel, formatBytes, formatCount, type ModelReport } from '../info.ts';
import { openModelFile } from '../open.ts';
import { parse, positionals } from './args.ts';

const HELP = `usage: qllm info <model.gguf> [--json]
  Prints architecture, hyperparameters, tokenizer, parameter count, tensor types,
  bits per weight and the memory-savings table (stored vs F16/F32, KV cache).
  --json   one JSON object with the same figures (keys documented in README.md)`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals: pos } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'info');
  if (values.help) return void console.log(HELP);
  const [path] = positionals(pos, ['model.gguf'], 'info');
  const file = await openModelFile(path);
  try {
    const r = describeModel(file);
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
  );
  if (m.weights_stored_bytes > 0 && m.weights_stored_bytes < m.weights_f16_bytes) {
    lines.push(`  quantization saves ${formatBytes(m.weights_f16_bytes - m.weights_stored_bytes)} (${(m.weights_f16_bytes / m.weights_stored_bytes).toFixed(2)}x smaller than F16)`);
  }
  return lines.join('\n');
}
