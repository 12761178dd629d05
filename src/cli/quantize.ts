// `qllm quantize <in.gguf> <out.gguf> <type> [--report] [--pure] [--json]`:
// F32/F16/BF16 GGUF → Q4_K_M, Q8_0, …, with llama.cpp's per-tensor type mix.
import { UsageError } from '../errors.ts';
import { TARGETS } from '../quantize/mix.ts';
import { type QuantizeReport, quantizeFile } from '../quantize/quantize-file.ts';
import { num, parse, positionals } from './args.ts';

const HELP = `usage: qllm quantize <in.gguf> <out.gguf> <type> [--report] [--pure] [--json]
  Quantizes an F32/F16/BF16 GGUF. Types: ${TARGETS.map((t) => t.name).join(', ')}
  (Q3_K, Q4_K, Q5_K are aliases of the _M mixes, as in llama-quantize).
  Mixes follow llama.cpp: output.weight in Q6_K (Q8_0 if its rows don't fit 256),
  attn_v/ffn_down promoted on the first/last eighth of layers and every third between,
  1-D tensors (norms) kept as they are; rows that don't fit a block fall back
  (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, Q2_K/Q3_K→IQ4_NL, else F16), with a note.
  Quantizers reproduce ggml's reference (no imatrix) bytes.
  --report    per-tensor type, RMSE, max |error|, SNR; totals and sizes
  --pure      base type for every tensor (no mix rules), like llama-quantize --pure
  --json      print the report as JSON
  --threads N encode on N worker threads (default: all cores); the bytes do not depend on N`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals: pos } = parse(
    argv,
    { report: { type: 'boolean' }, pure: { type: 'boolean' }, json: { type: 'boolean' }, threads: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    'quantize',
  );
  if (values.help) return void console.log(HELP);
  const threads = num(values.threads, '--threads', { min: 1, max: 1024, integer: true, dflt: Math.min(8, (await import('node:os')).availableParallelism()) });
  const [inPath, outPath, type] = positionals(pos, ['in.gguf', 'out.gguf', 'type'], 'quantize');
  if (!type) throw new UsageError('missing <type>');
  const tty = process.stderr.isTTY === true;
  let lastDraw = 0;
  const onSignal = () => {
    // The writer's .tmp file is left behind by a kill; the output name never exists.
    process.stderr.write(`\nqllm: interrupted; ${outPath} was not written\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  const notes: string[] = [];
  try {
    const r = await quantizeFile(inPath, outPath, type, {
      report: values.report || values.json,
      pure: values.pure,
      threads,
      // --report asked for each tensor; otherwise one summary line at the end.
      onNote: (name, note) => (values.report ? process.stderr.write(`${tty ? '\r\x1b[K' : ''}note: ${name}: ${note}\n`) : notes.push(note)),
      onProgress: tty
        ? (done, total, name) => {
            const now = Date.now();
            if (now - lastDraw < 100 && done < total) return;
            lastDraw = now;
            const w = 30;
            const k = Math.round((w * done) / total);
            process.stderr.write(`\r\x1b[K[${'#'.repeat(k)}${'-'.repeat(w - k)}] ${((100 * done) / total).toFixed(0).padStart(3)}% ${name}`);
          }
        : undefined,
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (notes.length) console.error(summariseNotes(notes, r.tensors.length));
    if (values.json) console.log(JSON.stringify(r, (_, v) => (v === Number.POSITIVE_INFINITY ? 'inf' : v), 2));
    else console.log(formatQuantizeReport(r, values.report === true));
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
}

/**
 * The per-tensor fallback notes as one line: stories260K's 64- and 172-wide rows
 * gave 36 lines of the same two or three notes. Grouped by fallback, e.g.
 * "note: 36 of 48 tensors fall back to another type because their rows do not
 * fit its blocks: 27 Q4_K → Q5_0 (64 columns), 5 Q4_K → F16 (172 columns), …".
 */
export function summariseNotes(notes: string[], tensors: number): string {
  const groups = new Map<string, { n: number; cols: Set<string> }>();
  for (const note of notes) {
    const m = /^(\d+) columns are not a multiple of \d+ \((\w+)\); using (\w+)$/.exec(note);
    const key = m ? `${m[2]} → ${m[3]}` : note;
    const g = groups.get(key) ?? { n: 0, cols: new Set<string>() };
    g.n++;
    if (m) g.cols.add(m[1]);
    groups.set(key, g);
  }
  const parts = [...groups].sort((a, b) => b[1].n - a[1].n).map(([k, g]) => `${g.n} ${k}${g.cols.size ? ` (${[...g.cols].join('/')} columns)` : ''}`);
  return `note: ${notes.length} of ${tensors} tensors fall back to another type because their rows do not fit its blocks: ${parts.join(', ')}; --report lists each tensor`;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
const db = (v: number | undefined) => (v === undefined ? '' : v === Number.POSITIVE_INFINITY ? 'exact' : `${v.toFixed(1)} dB`);

export function formatQuantizeReport(r: QuantizeReport, detailed: boolean): string {
  const lines: string[] = [];
  if (detailed) {
    const w = Math.max(6, ...r.tensors.map((t) => t.name.length));
    lines.push(`${'tensor'.padEnd(w)}  ${'shape'.padEnd(14)} ${'from'.padEnd(5)} ${'to'.padEnd(7)} ${'rmse'.padStart(10)} ${'max|err|'.padStart(10)} ${'SNR'.padStart(9)}`);
    for (const t of r.tensors) {
      lines.push(
        `${t.name.padEnd(w)}  ${t.dims.join('x').padEnd(14)} ${t.from.padEnd(5)} ${t.to.padEnd(7)} ${(t.rmse ?? 0).toExponential(2).padStart(10)} ${(t.maxAbs ?? 0).toExponential(2).padStart(10)} ${db(t.snrDb).padStart(9)}`,
      );
    }
    lines.push('');
  }
  const counts = new Map<string, number>();
  for (const t of r.tensors) counts.set(t.to, (counts.get(t.to) ?? 0) + 1);
  lines.push(
    `quantized to ${r.target} (file type ${r.ftype}) in ${r.seconds.toFixed(1)} s: ${r.tensors.length} tensors (${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')})`,
    `tensor data ${mib(r.bytesIn)} → ${mib(r.bytesOut)} (${((100 * r.bytesOut) / Math.max(1, r.bytesIn)).toFixed(1)}%), file ${mib(r.fileBytesOut)}${r.snrDb !== undefined ? `, overall SNR ${db(r.snrDb)}` : ''}`,
  );
  return lines.join('\n');
}
