// A deterministic stand-in for a loaded Model, for testing the server without a GPU.
// Replies "You said: <words of the last user message / prompt>" one word per token,
// `delayMs` apart. Prompts containing:
//   "forever" → endless "tick0 tick1 …" until maxTokens or abort
//   "explode" → GpuError after two tokens
// Honours maxTokens, stop strings and AbortSignal like the real Model contract.
// With opts.logprobs every token has logprob -0.5 and alternatives (itself, <eos>, <bos>).
// `script(prompt, opts)` may return the pieces to reply with instead (tool-call tests).
// With `context: true` it keeps to the context as the library does: without
// opts.contextShift the reply ends there ('length') and a longer prompt is refused;
// with it the prompt is cut (truncatePrompt) and each time the context fills a
// shift keeps opts.keepTokens (-1: the prompt; default 1) and drops half of the
// rest, counted in the stats and recorded in `shifts`.
import type { ChatMessage, ChatOptions, Embedding, GenerateOptions, Generation, GenerationStats, GpuBytes, Model, ModelInfo, Token } from '../../src/api.ts';
import { GpuError, UsageError } from '../../src/errors.ts';
import { truncatePrompt } from '../../src/generate.ts';

export interface FakeModelOptions {
  delayMs?: number;
  contextLength?: number;
  name?: string;
  /** The reply's pieces for this prompt (undefined: the usual "You said: …"). */
  script?: (prompt: string, opts: GenerateOptions) => string[] | undefined;
  /** Keep to the context as the library does (see the top of the file). */
  context?: boolean;
}

export class FakeModel implements Model {
  readonly info: ModelInfo;
  readonly delayMs: number;
  /** Observations for the tests. */
  started = 0;
  aborted = 0;
  active = 0;
  maxActive = 0;
  lastOpts: ChatOptions | undefined;
  lastPrompt = '';
  /** With `context`: each shift's kept tokens (the ids at the start that stayed) and the tokens it dropped. */
  shifts: { kept: number[]; dropped: number }[] = [];
  private readonly script: FakeModelOptions['script'];
  private readonly context: boolean;
  private readonly vocab = new Map<string, number>(['<bos>', '<eos>'].map((w, i) => [w, i]));
  private readonly words: string[] = ['<bos>', '<eos>'];

  constructor(o: FakeModelOptions = {}) {
    this.delayMs = o.delayMs ?? 1;
    this.script = o.script;
    this.context = o.context ?? false;
    this.info = {
      name: o.name ?? 'fake-model', architecture: 'fake', contextLength: o.contextLength ?? 512, vocabSize: 32000,
      fileBytes: 123_456_789, f16WeightBytes: 440_000_000, adapter: 'fake adapter',
    };
  }

  tokenize(text: string, opts: { addBos?: boolean } = {}): number[] {
    const ids = text.split(/\s+/).filter(Boolean).map((w) => this.id(w));
    return opts.addBos === false ? ids : [0, ...ids];
  }

  detokenize(ids: number[]): string { return ids.map((i) => this.words[i] ?? '?').join(' '); }

  /** 4-dimensional unit vectors from the words' ids: equal texts embed equally. */
  async embed(texts: string | string[]): Promise<Embedding[]> {
    return (Array.isArray(texts) ? texts : [texts]).map((t) => {
      const ids = this.tokenize(t);
      const v = [1, 0, 0, 0].map((b, j) => b + ids.reduce((s, id, i) => s + Math.sin(id * (j + 1) + i), 0));
      const n = Math.hypot(...v);
      return { embedding: v.map((x) => x / n), tokens: ids.length };
    });
  }

  memory(): GpuBytes { return { weights: 125_000_000, kv: 16_777_216, activations: 4_194_304, other: 1_048_576, total: 125_000_000 + 16_777_216 + 4_194_304 + 1_048_576 }; }

  dispose(): void {}

  chat(messages: ChatMessage[], opts: ChatOptions = {}): Generation {
    const prompt = `${messages.map((m) => `<|${m.role}|> ${m.content}`).join('\n')}\n<|assistant|>`;
    const lastUser = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    return this.run(prompt, lastUser, opts);
  }

  generate(prompt: string, opts: GenerateOptions = {}): Generation { return this.run(prompt, prompt, opts); }

  private id(w: string): number {
    let id = this.vocab.get(w);
    if (id === undefined) { id = this.words.length; this.vocab.set(w, id); this.words.push(w); }
    return id;
  }

  private run(prompt: string, subject: string, opts: GenerateOptions): Generation {
    this.lastOpts = opts;
    this.lastPrompt = prompt;
    let promptIds = this.tokenize(prompt, { addBos: true });
    const ctx = this.info.contextLength;
    const shift = this.context && opts.contextShift === true;
    const keep = Math.min(opts.keepTokens === -1 ? promptIds.length : (opts.keepTokens ?? 1), Math.floor(ctx / 2));
    let dropped = 0;
    if (shift && promptIds.length >= ctx) {
      const cut = truncatePrompt(promptIds, ctx, keep);
      dropped = promptIds.length - cut.length;
      promptIds = cut;
    }
    let resolveStats!: (s: GenerationStats) => void;
    let rejectStats!: (e: unknown) => void;
    const stats = new Promise<GenerationStats>((res, rej) => { resolveStats = res; rejectStats = rej; });
    const t0 = performance.now();
    const self = this;
    const maxTokens = this.context && !shift ? Math.min(opts.maxTokens ?? 256, ctx - promptIds.length) : (opts.maxTokens ?? 256);
    const cache = [...promptIds];
    let shifts = 0;
    const lp = (id: number) => (opts.logprobs === undefined ? {} : {
      logprob: -0.5, topLogprobs: [{ tokenId: id, logprob: -0.5 }, { tokenId: 1, logprob: -1.5 }, { tokenId: 0, logprob: -3 }].slice(0, opts.logprobs),
    });
    const words = this.script?.(prompt, opts) ?? (subject.includes('forever') ? null : ['You', ' said:', ...subject.split(/\s+/).filter(Boolean).map((w) => ` ${w}`)]);
    let text = '';

    async function* tokens(): AsyncGenerator<Token> {
      let n = 0;
      let ttft = 0;
      text = '';
      let reason: GenerationStats['stopReason'] = 'eos';
      const finish = () => resolveStats({
        promptTokens: promptIds.length, generatedTokens: n, ttftMs: ttft, prefillTokPerS: 1000, decodeTokPerS: n > 1 ? 1000 / Math.max(self.delayMs, 0.1) : 0, stopReason: reason,
        ...(shifts ? { contextShifts: shifts } : {}), ...(dropped ? { droppedPromptTokens: dropped } : {}),
      });
      self.started++;
      self.active++;
      self.maxActive = Math.max(self.maxActive, self.active);
      try {
        if (promptIds.length + 1 > self.info.contextLength) throw new UsageError(`prompt is ${promptIds.length} tokens but the context holds ${self.info.contextLength}: shorten it`);
        for (;;) {
          if (opts.signal?.aborted) { reason = 'abort'; self.aborted++; break; }
          if (n >= maxTokens) { reason = 'length'; break; }
          if (words && n >= words.length) { reason = 'eos'; break; }
          await sleep(self.delayMs, opts.signal);
          if (opts.signal?.aborted) { reason = 'abort'; self.aborted++; break; }
          if (subject.includes('explode') && n === 2) throw new GpuError('device lost (fake): restart the server');
          const piece = words ? words[n] : `${n ? ' ' : ''}tick${n}`;
          const stopAt = firstStop(text + piece, opts.stop);
          if (stopAt >= 0) {
            const cut = (text + piece).slice(text.length, stopAt);
            if (cut) { n++; const id = self.id(cut.trim() || cut); yield { text: cut, tokenId: id, ...lp(id) }; }
            reason = 'stop';
            break;
          }
          if (n === 0) ttft = performance.now() - t0;
          n++;
          text += piece;
          const id = self.id(piece.trim());
          if (shift && cache.length + 1 > ctx) {
            // The library's shift: keep the first `keep`, drop half of the rest.
            const drop = Math.floor((cache.length - keep) / 2);
            self.shifts.push({ kept: cache.slice(0, keep), dropped: drop });
            cache.splice(keep, drop);
            shifts++;
          }
          cache.push(id);
          yield { text: piece, tokenId: id, ...lp(id) };
        }
        finish();
      } catch (e) {
        rejectStats(e);
        throw e;
      } finally {
        self.active--;
        // A consumer that stops iterating early (return()) ends the generation too.
        finish();
      }
    }
    const it = tokens();
    const message = stats.then(() => ({ role: 'assistant' as const, content: text }));
    message.catch(() => {});
    return { [Symbol.asyncIterator]: () => it, stats, promptIds: Promise.resolve(promptIds), message };
  }
}

function firstStop(text: string, stop: string[] | undefined): number {
  let best = -1;
  for (const s of stop ?? []) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}
