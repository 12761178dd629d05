// `qllm run <model.gguf> -p TEXT`: stream a completion to stdout, stats to stderr.
import { readFile } from 'node:fs/promises';
import type { GenerateOptions, GenerationStats } from '../api.ts';
import { BUNDLED_NOTE, bundledModelPath } from '../bundled.ts';
import { UsageError } from '../errors.ts';
import { parseKvType } from '../models/kv-cache.ts';
import { grammarFlagOptions } from '../grammar/cli.ts';
import { formatBytes, formatKvBytes, formatWeightSavings } from '../info.ts';
import { loadModel, type QllmModel } from '../model-api.ts';
import { validateSamplerOptions } from '../sampler.ts';
import { num, parse, positionals } from './args.ts';
import { Interrupted } from './main.ts';
import { progressBar } from './progress.ts';

const HELP = `usage: qllm run [<model.gguf>] [-p TEXT | -f FILE] [options]
  <model.gguf>             a GGUF file or hf:owner/repo/file.gguf; none: the bundled stories260K
  -p, --prompt TEXT        prompt text (or read from stdin when piped)
  -f, --file FILE          read the prompt from a file
  -n, --max-tokens N       tokens to generate (default 256)
  -c, --ctx N              context length (default min(model, 2048); 'qllm info -c N' says the memory it takes)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K            keep the K most likely tokens (default 40, 0 = off)
      --top-p P            nucleus sampling (default 0.95)
      --min-p P            drop tokens below P x the top probability (default 0.05)
      --repeat-penalty R   penalise the last 64 tokens (default 1.0 = off)
      --seed S             make sampling reproducible
      --stop S             stop before S (repeatable)
      --json-schema S      output JSON valid under the JSON Schema S (a file, or inline JSON text)
      --grammar-file F     output only what the GBNF grammar in F allows (llama.cpp's format)
      --no-bos             do not add the BOS token
      --context-shift      at the end of the context keep going: drop the oldest half
                           (keeping the BOS) and recompute the rest, as llama.cpp does
      --special            print control tokens the model generates (<s>, <|im_start|>, ...) as text
      --no-f16             force the f32 shader path
      --kv-type T          KV cache type: f16 (default; f32 without shader-f16), f32, q8_0, q4_0
      --memory-budget B    refuse to load past B bytes of GPU memory (e.g. 2G, 512M)
      --json               print one JSON object with ids, text and stats
      --no-stats           do not print stats to stderr`;

/** Flags shared by run, chat, bench and perplexity. */
export const modelFlags = {
  ctx: { type: 'string', short: 'c' },
  'no-f16': { type: 'boolean' },
  'kv-type': { type: 'string' },
  'memory-budget': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const samplerFlags = {
  temp: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  'max-tokens': { type: 'string', short: 'n' },
  'json-schema': { type: 'string' },
  'grammar-file': { type: 'string' },
} as const;

export function samplerOptions(v: Record<string, unknown>): GenerateOptions {
  const s = (k: string) => v[k] as string | undefined;
  const opts: GenerateOptions = {
    temperature: num(s('temp'), '--temp', { min: 0, dflt: 0.8 }),
    topK: num(s('top-k'), '--top-k', { min: 0, integer: true, dflt: 40 }),
    topP: num(s('top-p'), '--top-p', { min: 0, max: 1, dflt: 0.95 }),
    minP: num(s('min-p'), '--min-p', { min: 0, max: 1, dflt: 0.05 }),
    repeatPenalty: num(s('repeat-penalty'), '--repeat-penalty', { min: 0.01, dflt: 1 }),
    seed: num(s('seed'), '--seed', { min: 0, integer: true }),
    maxTokens: num(s('max-tokens'), '-n', { min: 1, integer: true, dflt: 256 }),
    stop: (v.stop as string[] | undefined) ?? [],
    ...grammarFlagOptions(s('json-schema'), s('grammar-file')),
  };
  validateSamplerOptions(opts);
  return opts;
}

export async function loadForCli(path: string, v: Record<string, unknown>): Promise<{ model: QllmModel; loadMs: number }> {
  const ctx = num(v.ctx as string | undefined, '-c', { min: 2, integer: true, example: 2048 });
  const kvType = parseKvType(v['kv-type'], '--kv-type');
  path = await (await import('../pull/resolve.ts')).resolveModelArg(path); // hf:owner/repo/file.gguf: the cached file, downloaded on first use
  const bar = progressBar('loading');
  const t0 = performance.now();
  try {
    const budget = v['memory-budget'] === undefined ? undefined : (await import('../models/memory-plan.ts')).parseByteSize(v['memory-budget'] as string, '--memory-budget');
    const model = await loadModel(path, { contextLength: ctx, memoryBudget: budget, noF16: v['no-f16'] === true, kvType, onProgress: (f, l) => bar.update(f, l) });
    return { model, loadMs: performance.now() - t0 };
  } finally {
    bar.done();
  }
}

/** ' | context shifted N times (M prompt tokens cut)' when the context was full. */
function shiftNote(s: GenerationStats): string {
  const parts: string[] = [];
  if (s.contextShifts) parts.push(`context shifted ${s.contextShifts} time${s.contextShifts > 1 ? 's' : ''}`);
  if (s.droppedPromptTokens) parts.push(`${s.droppedPromptTokens} prompt tokens cut to fit`);
  return parts.length ? ` | ${parts.join(', ')}` : '';
}

export function statsLines(model: QllmModel, s: GenerationStats, loadMs: number): string {
  const m = model.memory();
  // The rate is over the tokens this call fed; a chat turn reuses the rest from the KV cache.
  const cached = s.cachedTokens ?? 0;
  const prompt = cached ? `${s.promptTokens - cached} new tokens; ${cached} reused from the cache` : `${s.promptTokens} tokens`;
  return [
    `load ${loadMs.toFixed(0)} ms | ttft ${s.ttftMs.toFixed(0)} ms | prefill ${s.prefillTokPerS.toFixed(1)} tok/s (${prompt}) | decode ${s.decodeTokPerS.toFixed(1)} tok/s (${s.generatedTokens} tokens, ${s.stopReason})${shiftNote(s)}`,
    `gpu memory: weights ${formatBytes(m.weights)}, ${formatKvBytes(m.kv, model.info.kvType, model.info.kvF16Bytes)}, activations ${formatBytes(m.activations)}, other ${formatBytes(m.other)}, total ${formatBytes(m.total)}`,
    `${formatWeightSavings(m.weights, model.info.f16WeightBytes)} | adapter: ${model.info.adapter}`,
  ].join('\n');
}

/**
 * What to print for a streamed token. The generation's text leaves control tokens
 * out (BOS, <|im_end|>: llama.cpp prints none unless --special); with `special`
 * they are appended as their text.
 */
export function tokenText(model: QllmModel, t: { text: string; tokenId: number }, special: boolean): string {
  if (!special || t.tokenId < 0 || !model.tokenizer.isSpecial(t.tokenId)) return t.text;
  return t.text + model.tokenizer.decode([t.tokenId], { special: true, stripLeadingSpace: false });
}

async function readPrompt(v: Record<string, unknown>): Promise<string> {
  if (v.prompt !== undefined && v.file !== undefined) throw new UsageError('give either -p or -f, not both');
  if (v.prompt !== undefined) return v.prompt as string;
  if (v.file !== undefined) {
    try {
      return await readFile(v.file as string, 'utf8');
    } catch {
      throw new UsageError(`cannot read prompt file ${v.file}: check the path`);
    }
  }
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  throw new UsageError("no prompt: pass -p TEXT or -f FILE (or use 'qllm chat' for a conversation)");
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals: pos } = parse(
    argv,
    {
      ...modelFlags,
      ...samplerFlags,
      prompt: { type: 'string', short: 'p' },
      file: { type: 'string', short: 'f' },
      'no-bos': { type: 'boolean' },
      'context-shift': { type: 'boolean' },
      special: { type: 'boolean' },
      json: { type: 'boolean' },
      'no-stats': { type: 'boolean' },
    },
    'run',
  );
  if (v.help) return void console.log(HELP);
  // `qllm run model.gguf "Once upon a time"`: the prompt goes behind -p.
  if (pos.length > 1) throw new UsageError(`unexpected argument '${pos[1]}': pass the prompt with -p, e.g. qllm run ${pos[0]} -p ${JSON.stringify(pos.slice(1).join(' '))}`);
  // `qllm run -p TEXT` with no model: the one that ships in the package (a first run needs no download).
  const bundled = pos.length === 0 && (v.prompt !== undefined || v.file !== undefined);
  const [path] = bundled ? [bundledModelPath()] : positionals(pos, ['model.gguf'], 'run');
  if (bundled) process.stderr.write(`qllm: ${BUNDLED_NOTE}\n`);
  const opts = samplerOptions(v); // bad values fail before the model loads
  const prompt = await readPrompt(v);
  const { model, loadMs } = await loadForCli(path, v);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    const gen = model.generate(prompt, { ...opts, addBos: v['no-bos'] ? false : undefined, contextShift: v['context-shift'] === true, signal: ac.signal });
    const ids: number[] = [];
    let text = '';
    for await (const t of gen) {
      if (t.tokenId >= 0) ids.push(t.tokenId);
      const out = tokenText(model, t, v.special === true);
      text += out;
      if (!v.json && out) process.stdout.write(out);
    }
    const stats = await gen.stats;
    const promptIds = await gen.promptIds;
    if (v.json) {
      const m = model.memory();
      console.log(JSON.stringify({
        prompt_ids: promptIds,
        ids,
        text,
        stats: {
          load_ms: round(loadMs), ttft_ms: round(stats.ttftMs), prefill_tok_s: round(stats.prefillTokPerS), decode_tok_s: round(stats.decodeTokPerS),
          prompt_tokens: stats.promptTokens, generated_tokens: stats.generatedTokens, stop_reason: stats.stopReason,
          gpu_bytes: m, f16_weight_bytes: model.info.f16WeightBytes, kv_type: model.info.kvType, kv_f16_bytes: model.info.kvF16Bytes, adapter: model.info.adapter,
        },
      }));
    } else {
      process.stdout.write('\n');
    }
    if (!v['no-stats']) console.error(statsLines(model, stats, loadMs));
    if (stats.stopReason === 'abort') throw new Interrupted(); // Ctrl-C: exit 130, as during the load
  } finally {
    process.off('SIGINT', onSigint);
    model.dispose();
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
