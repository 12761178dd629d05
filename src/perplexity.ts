// Perplexity the way llama.cpp's perplexity tool measures it: split the token
// stream into chunks of n_ctx tokens, make each chunk start with BOS, run it
// from an empty cache, and score only the second half of each chunk (so every
// scored token sees at least n_ctx/2 tokens of context).
// KL divergence: a base run saves its log-probabilities at the scored
// positions; a later run (a quantized model) compares against them.
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';
import { atomicWriteFile } from './util/atomic-write.ts';

export interface PplModel {
  readonly contextLength: number;
  forward(tokens: number[], pos: number, opts: { allLogits: true }): Promise<Float32Array>;
}

export interface PerplexityResult {
  ppl: number;
  /** ± one standard error of the PPL estimate. */
  pplError: number;
  chunks: number;
  ctx: number;
  scoredTokens: number;
  tokPerS: number;
  kld?: { mean: number; meanError: number; top1Agreement: number };
}

export interface PerplexityOptions {
  ctx: number;
  /** Max chunks (default: all that fit). */
  chunks?: number;
  bosId?: number;
  /** Write base log-probs here. */
  saveBase?: string;
  /** Compare against base log-probs read from here. */
  compareBase?: string;
  onChunk?: (i: number, n: number, pplSoFar: number) => void;
}

const MAGIC = 0x444c4b51; // 'QKLD'

/** log-softmax of logits[off, off+n) into out (f64 accumulate). */
function logSoftmax(logits: Float32Array, off: number, n: number, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = logits[off + i] - lse;
}

export async function perplexity(model: PplModel, tokens: number[], vocab: number, o: PerplexityOptions): Promise<PerplexityResult> {
  const ctx = o.ctx;
  if (ctx < 8) throw new UsageError(`context ${ctx} is too small for perplexity: pass -c 64 or more`);
  if (ctx > model.contextLength) throw new UsageError(`-c ${ctx} exceeds the loaded context of ${model.contextLength}: pass a smaller -c`);
  const maxChunks = Math.floor(tokens.length / ctx);
  if (maxChunks < 1) throw new UsageError(`the text has ${tokens.length} tokens, fewer than one chunk of ${ctx}: use a longer text or a smaller -c`);
  const nChunks = Math.min(o.chunks ?? maxChunks, maxChunks);
  const first = ctx >> 1;
  const perChunk = ctx - first - 1;

  let base: { vocab: number; ctx: number; chunks: number; tokens: Int32Array; logp: Float32Array } | undefined;
  if (o.compareBase) {
    base = await readBase(o.compareBase);
    if (base.vocab !== vocab || base.ctx !== ctx) throw new UsageError(`KL base ${o.compareBase} was made with vocab ${base.vocab}, -c ${base.ctx}; this run has vocab ${vocab}, -c ${ctx}: use the same -c and a model with the same vocabulary`);
    for (let i = 0; i < Math.min(base.tokens.length, nChunks * ctx); i++) {
      if (base.tokens[i] !== tokens[i]) throw new UsageError(`KL base ${o.compareBase} was made from a different text (token ${i} differs): use the same -f file`);
    }
  }
  const save = o.saveBase ? new Float32Array(nChunks * perChunk * vocab) : undefined;

  const lp = new Float32Array(vocab);
  let nll = 0;
  let nll2 = 0;
  let count = 0;
  let kl = 0;
  let kl2 = 0;
  let top1 = 0;
  const t0 = performance.now();
  for (let c = 0; c < nChunks; c++) {
    const chunk = tokens.slice(c * ctx, (c + 1) * ctx);
    if (o.bosId !== undefined) chunk[0] = o.bosId;
    const logits = await model.forward(chunk, 0, { allLogits: true });
    for (let j = first; j < ctx - 1; j++) {
      logSoftmax(logits, j * vocab, vocab, lp);
      const v = -lp[tokens[c * ctx + j + 1]];
      nll += v;
      nll2 += v * v;
      count++;
      const k = (c * perChunk + (j - first)) * vocab;
      if (save) save.set(lp, k);
      if (base) {
        let d = 0;
        let bestB = 0;
        let bestM = 0;
        for (let t = 0; t < vocab; t++) {
          const lb = base.logp[k + t];
          d += Math.exp(lb) * (lb - lp[t]);
          if (lb > base.logp[k + bestB]) bestB = t;
          if (lp[t] > lp[bestM]) bestM = t;
        }
        kl += d;
        kl2 += d * d;
        if (bestB === bestM) top1++;
      }
    }
    o.onChunk?.(c + 1, nChunks, Math.exp(nll / count));
  }
  const secs = (performance.now() - t0) / 1000;
  const mean = nll / count;
  const variance = Math.max(0, nll2 / count - mean * mean);
  const err = Math.sqrt(variance / Math.max(1, count - 1));
  const ppl = Math.exp(mean);
  if (save && o.saveBase) await writeBase(o.saveBase, vocab, ctx, nChunks, tokens.slice(0, nChunks * ctx), save);
  const result: PerplexityResult = { ppl, pplError: err * ppl, chunks: nChunks, ctx, scoredTokens: count, tokPerS: (nChunks * ctx) / secs };
  if (base) {
    const m = kl / count;
    result.kld = { mean: m, meanError: Math.sqrt(Math.max(0, kl2 / count - m * m) / Math.max(1, count - 1)), top1Agreement: top1 / count };
  }
  return result;
}

async function writeBase(path: string, vocab: number, ctx: number, chunks: number, tokens: number[], logp: Float32Array) {
  const head = new Int32Array([MAGIC, vocab, ctx, chunks, tokens.length]);
  const buf = Buffer.concat([Buffer.from(head.buffer), Buffer.from(new Int32Array(tokens).buffer), Buffer.from(logp.buffer, logp.byteOffset, logp.byteLength)]);
  await atomicWriteFile(path, buf);
}

async function readBase(path: string) {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch {
    throw new UsageError(`cannot read KL base ${path}: make it first with --kl-divergence-base ${path} on the base model`);
  }
  const bad = () => new UsageError(`${path} is not a qllm KL base file: make it with --kl-divergence-base`);
  if (buf.length < 20) throw bad();
  const u8 = new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const head = new Int32Array(u8.buffer, 0, 5);
  if (head[0] !== MAGIC) throw bad();
  const [, vocab, ctx, chunks, nTok] = head;
  const perChunk = ctx - (ctx >> 1) - 1;
  const need = 20 + nTok * 4 + chunks * perChunk * vocab * 4;
  if (u8.length !== need) throw bad();
  return { vocab, ctx, chunks, tokens: new Int32Array(u8.buffer, 20, nTok), logp: new Float32Array(u8.buffer, 20 + nTok * 4, chunks * perChunk * vocab) };
}
