// The test FakeModel with sessions (Model.createSession / mainSession), for the
// server's slots without a GPU: each session runs the fake's generations (so
// FakeModel.active/maxActive count them across sessions) and keeps a prompt
// cache of its last prompt and reply, as ids of the fake's word vocabulary,
// which it reports as GenerationStats.cachedTokens.
import type { ChatMessage, ChatOptions, GenerateOptions, Generation, ModelInfo, ModelSession } from '../../src/api.ts';
import { UsageError } from '../../src/errors.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';

export class FakeParallelModel extends FakeModel {
  readonly mainSession: FakeSession;
  readonly sessions: FakeSession[] = [];
  private free: number;

  constructor(readonly parallel: number, o: FakeModelOptions = {}) {
    super(o);
    (this as { info: ModelInfo }).info = { ...this.info, parallel };
    this.free = parallel - 1;
    this.mainSession = new FakeSession(this, 0);
    this.sessions.push(this.mainSession);
  }

  createSession(): ModelSession {
    if (this.free === 0) throw new UsageError(`all ${this.parallel} sequences are in use`);
    this.free--;
    const s = new FakeSession(this, this.sessions.length);
    this.sessions.push(s);
    return s;
  }
}

export class FakeSession implements ModelSession {
  /** Ids of the last prompt and reply. */
  cached: number[] = [];
  /** Prompts this session served, in order. */
  prompts: string[] = [];

  constructor(private readonly model: FakeModel, readonly id: number) {}

  generate(prompt: string, opts: GenerateOptions = {}): Generation {
    return this.cache(prompt, this.model.generate(prompt, opts), opts);
  }

  chat(messages: ChatMessage[], opts: ChatOptions = {}): Generation {
    return this.cache(messages.map((m) => m.content).join(' '), this.model.chat(messages, opts), opts);
  }

  cachedTokens(ids: number[]): number {
    let n = 0;
    while (n < this.cached.length && n < ids.length - 1 && this.cached[n] === ids[n]) n++;
    return n;
  }

  reset(): void { this.cached = []; }
  dispose(): void {}

  private cache(prompt: string, g: Generation, opts: GenerateOptions): Generation {
    const ids = this.model.tokenize(prompt, { addBos: opts.addBos });
    const hit = this.cachedTokens(ids);
    this.prompts.push(prompt);
    const stats = g.stats.then((s) => ({ ...s, cachedTokens: hit }));
    stats.catch(() => {});
    // The reply's ids join the cache as they come.
    const reply: number[] = [];
    const self = this;
    const it = g[Symbol.asyncIterator]();
    async function* tokens() {
      try {
        for (let r = await it.next(); !r.done; r = await it.next()) {
          if (r.value.tokenId >= 0) reply.push(r.value.tokenId);
          yield r.value;
        }
      } finally {
        await it.return?.();
        self.cached = [...ids, ...reply];
      }
    }
    const t = tokens();
    return { [Symbol.asyncIterator]: () => t, stats, promptIds: g.promptIds, message: g.message };
  }
}
