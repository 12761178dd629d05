// The llama-family transformer on the GPU. load() validates the file and the
// plan, and LlamaBuild (llama-build.ts) uploads the weights, allocates the KV
// cache and activations, and builds every pipeline and bind group; the
// forward passes here then only write a 16-byte uniform and the token ids,
// record one command buffer per batch, and read back logits.
import type { Config } from '../config.ts';
import { GgufError, GpuError, UsageError } from '../errors.ts';
import type { GgufFile } from '../gguf/types.ts';
import type { Engine } from '../gpu/engine.ts';
import { StepProfiler, type StepTimes } from '../gpu/profiler.ts';
import type { Step } from './llama-parts.ts';
import { checkModel } from './llama-tensors.ts';
import { resolveKvType } from './kv-cache.ts';
import { checkEnginePlan } from './memory-plan.ts';
import { CHAINED } from './step-bytes.ts';
import { argmaxOf, type BatchResult, type BatchRow, checkSequences } from './llama-batch.ts';
import { LlamaBuild, type LlamaLoadOptions } from './llama-build.ts';

export type { LlamaLoadOptions };

export class LlamaModel extends LlamaBuild {
  private busy = false;
  /** Which of the two argmax readback buffers the next argmax submit copies into. */
  private slot = 0;
  /**
   * A greedy step queued ahead (forwardArgmax's `next`): one token at `pos`
   * whose id the GPU takes from the previous step's argmax, so the GPU runs on
   * while that argmax is read back. `input` is that id, once read.
   */
  private ahead?: { pos: number; seq: number; slot: number; input?: number };

  static async load(engine: Engine, file: GgufFile, config: Config, opts: LlamaLoadOptions): Promise<LlamaModel> {
    const ctx = opts.contextLength;
    if (!Number.isInteger(ctx) || ctx < 1) throw new UsageError(`context length ${ctx} is invalid: pass a positive whole number of tokens as contextLength (-c)`);
    const tensors = checkModel(file, config, ctx);
    const kvType = resolveKvType(opts.kvType, engine.f16, config);
    const maxBatch = Math.max(1, Math.min(opts.maxBatch ?? 64, ctx));
    const sequences = checkSequences(opts.sequences, maxBatch);
    checkEnginePlan(engine, config, tensors, { ...opts, kvType, sequences }); // the whole plan against the budget and the adapter's limits, before the first buffer
    const m = new LlamaModel(engine, config, ctx, maxBatch, tensors.vocab, kvType, sequences);
    try {
      await m.build(file, tensors, opts);
    } catch (e) {
      m.dispose();
      if (e instanceof GgufError || e instanceof GpuError || e instanceof UsageError) throw e;
      throw new GpuError(`loading ${file.path} failed: ${(e as Error).message.split('\n')[0]}`);
    }
    return m;
  }

  /**
   * Records and submits one batch (≤ maxBatch tokens at positions pos…):
   * tail 'none' stops after the blocks, 'all' computes every token's logits,
   * 'last' the last token's, 'argmax' the last token's and its argmax,
   * 'hidden' every token's final-normed hidden state [n, dim] (embeddings); the
   * wanted result is copied into the readback buffer (argmax: readBest[slot]).
   * idsOnGpu: one token whose id is the previous submit's argmax, copied on
   * the GPU (`tokens` is then only its count). base: the first KV-cache slot
   * of the tokens' sequence (s·contextLength). tail 'rows' is a batched step
   * (submitBatch, planned by BatchSteps.prepare): tokens of several sequences,
   * each request's last row through the head and argmax, into the batch's readback.
   */
  protected submit(tokens: number[], pos: number, tail: 'none' | 'all' | 'last' | 'argmax' | 'hidden' | 'rows', slot = 0, idsOnGpu = false, base = 0): void {
    const e = this.engine, a = this.acts, n = tokens.length;
    const rows = tail === 'rows' ? this.batch : undefined;
    // The narrow tiles; the SwiGLU step is skipped where gate|up's tile stores silu(gate)·up.
    const narrow = !!rows && n <= this.sequences;
    const tilesGlu = (ps: readonly { step: Step }[]) => narrow && ps.length > 0 && ps.every((q) => this.tiles.get(q.step)?.gluStored);
    e.device.queue.writeBuffer(a.params, 0, new Uint32Array([n, pos, base, 0]));
    if (!idsOnGpu) e.device.queue.writeBuffer(a.ids, 0, Uint32Array.from(tokens));
    const enc = e.device.createCommandEncoder({ label: 'forward' });
    if (idsOnGpu) enc.copyBufferToBuffer(a.best, 0, a.ids, 0, 4);
    // Profile only the first submit of a forward (later batches would overwrite its queries before the read).
    const prof = this.prof && !this.prof.pending ? this.prof : undefined;
    // One token on CPU kernels: a dispatch per layer (llama-chain.ts) over the chains' own activations.
    const ch = n === 1 && tail !== 'hidden' && !rows ? this.chains : undefined;
    // A batched step of at most `sequences` tokens on CPU kernels: likewise (llama-batch-chain.ts).
    const bc = narrow ? this.batchChains : undefined;
    if (ch || bc) enc.clearBuffer((ch ?? bc)!.claims); // the chains' phase counters start at 0
    let pass = enc.beginComputePass();
    // One pass per step when profiling (timestamps are per pass), else one pass for all.
    const run = (label: string, s: Step, nt = n) => {
      if (prof) pass = prof.next(enc, pass, label);
      // A batched step of at most `sequences` tokens takes the products' narrow tiles.
      (narrow ? (this.tiles.get(s) ?? s) : s).encode(pass, nt, pos);
    };
    run('embed', (ch ?? bc)?.embed ?? this.embed);
    for (const chain of (ch ?? bc)?.chains ?? []) run(CHAINED, chain);
    for (const [i, L] of (ch || bc ? [] : this.layers).entries()) {
      // Attention: x += Wo · attn(rope(Wq·xn), rope(Wk·xn) → K cache, Wv·xn → V cache),
      // with the family's biases and q/k norms before RoPE, and its post-norm or scale on the way into x.
      // One token: steps the products do themselves are skipped (Layer.fused).
      if (L.attnNorm && (n > 1 || !L.fused.attnNorm)) run('attn_norm', L.attnNorm);
      for (const p of L.qkv) run(p.label, p.step);
      for (const s of L.between) run('qkv bias/norm', s);
      if (n > 1 || !L.fused.ropeKv) run('rope+kv', rows ? rows.layers[i].ropeKv : L.ropeKv);
      run('attention', rows ? rows.layers[i].attention : L.attention);
      run('attn_output', L.o);
      if (L.attnAdd) run('attn residual', L.attnAdd);
      // Feed-forward: x += Wdown · (act(Wgate·xn) ⊙ Wup·xn).
      if (L.ffnNorm && (n > 1 || !L.fused.ffnNorm)) run('ffn_norm', L.ffnNorm);
      for (const p of L.gateUp) run(p.label, p.step);
      if ((n > 1 || !L.fused.swiglu) && !tilesGlu(L.gateUp)) run('swiglu', L.swiglu);
      run('ffn_down', L.down);
      if (L.ffnAdd) run('ffn residual', L.ffnAdd);
    }
    if (tail === 'hidden' || (tail !== 'none' && !(n === 1 && (ch || this.outputAll.normFused)))) run('output_norm', bc ? bc.finalNorm : this.finalNorm);
    const head = ch ? ch.head : this.outputAll;
    if (rows) {
      // Each request's last row through the head, its argmax; ids and the logits asked for to the readback.
      pass.end();
      rows.gather(enc, a.xn);
      pass = enc.beginComputePass();
      run('output', rows.head!, rows.headRows); // k rows, not the step's n tokens
      if (rows.post) run('logits scale/cap', rows.post);
      if (prof) pass = prof.next(enc, pass, 'argmax');
      rows.encodeArgmax(pass);
      pass.end();
      rows.copy(enc);
    } else if (tail === 'hidden') {
      pass.end();
      enc.copyBufferToBuffer(a.xn, 0, a.readLogits, 0, n * this.config.dim * 4);
    } else if (tail === 'all') {
      run('output', head);
      if (this.logitsPost) run('logits scale/cap', this.logitsPost.all);
      pass.end();
      enc.copyBufferToBuffer(a.logits, 0, a.readLogits, 0, n * this.vocab * 4);
    } else if (tail === 'last' || tail === 'argmax') {
      // Only the last row feeds the output head: copy it out, project 1 token
      // (a single token is already that row: no copy, no second pass).
      if (n > 1) {
        pass.end();
        enc.copyBufferToBuffer(a.xn, (n - 1) * this.config.dim * 4, a.lastX, 0, this.config.dim * 4);
        pass = enc.beginComputePass();
      }
      run('output', n > 1 ? this.outputLast : head, 1);
      if (this.logitsPost) run('logits scale/cap', this.logitsPost.one, 1);
      if (tail === 'argmax') run('argmax', this.argmax, 1);
      pass.end();
      if (tail === 'argmax') enc.copyBufferToBuffer(a.best, 0, a.readBest[slot], 0, 4);
      else enc.copyBufferToBuffer(a.logits, 0, a.readLogits, 0, this.vocab * 4);
    } else {
      pass.end();
    }
    prof?.resolve(enc);
    e.device.queue.submit([enc.finish()]);
  }

  /**
   * Per-step GPU time for the forward passes that follow (src/gpu/profiler.ts):
   * `takeProfile()` returns and clears the totals. False without timestamp queries.
   */
  enableProfile(): boolean {
    if (!this.prof && StepProfiler.available(this.engine)) this.prof = new StepProfiler(this.engine, this.layers.length * 20 + 8);
    return !!this.prof;
  }

  /** Weight bytes (as in the file) that each step label reads per token, summed over layers. */
  weightBytesByStep(): ReadonlyMap<string, number> {
    return this.stepBytes.byStep();
  }

  /** The same by the steps a one-token profile shows ('layer (chained)' for the layers when chained). */
  decodeStepBytes(): ReadonlyMap<string, number> {
    return this.stepBytes.byDecodeStep(this.chained);
  }

  /** GPU ms per step label (summed over layers and forwards) since the last call. */
  takeProfile(): StepTimes {
    return this.prof?.take() ?? new Map();
  }

  private check(tokens: number[], pos: number, seq = 0): void {
    if (this.disposed) throw new UsageError('the model was disposed: load it again');
    if (this.busy) throw new UsageError('forward() called while another forward() is running: await the previous call first');
    this.validate(tokens, pos, seq);
  }

  /**
   * The rules on a request itself (sequence, positions, token ids), apart from
   * the model's state: the scheduler checks each request with them before it
   * joins a batched step, so one bad request does not fail its neighbours'.
   */
  validate(tokens: number[], pos: number, seq = 0): void {
    if (!(Number.isInteger(seq) && seq >= 0 && seq < this.sequences)) throw new UsageError(`sequence ${seq} is invalid: this model holds sequences 0…${this.sequences - 1} (LoadOptions.parallel)`);
    if (tokens.length === 0) throw new UsageError('forward() needs at least one token');
    if (!Number.isInteger(pos) || pos < 0) throw new UsageError(`position ${pos} is invalid: it must be a whole number ≥ 0`);
    if (pos + tokens.length > this.contextLength) {
      throw new UsageError(`prompt of ${pos + tokens.length} tokens does not fit the context of ${this.contextLength}: raise contextLength (-c) or shorten the prompt`);
    }
    for (const id of tokens) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab) throw new UsageError(`token id ${id} is outside the vocabulary of ${this.vocab}`);
    }
  }

  /** Runs every batch but the last (no logits); returns the last batch's range. */
  private prefix(tokens: number[], pos: number, base = 0): [number[], number] {
    let i = 0;
    for (; tokens.length - i > this.maxBatch; i += this.maxBatch) this.submit(tokens.slice(i, i + this.maxBatch), pos + i, 'none', 0, false, base);
    return [tokens.slice(i), pos + i];
  }

  /** `bytes` of a readback buffer once the GPU is done with the batch of `n` tokens just submitted (readback.ts). */
  private read(buf: GPUBuffer, bytes: number, n: number | string): Promise<ArrayBuffer> {
    return this.readback.read(buf, bytes, n, async () => {
      await this.prof?.collect();
    });
  }

  /**
   * Runs tokens at positions pos…pos+n-1 of sequence `seq` (default 0),
   * filling its KV cache. Returns the last token's logits [vocab], or with
   * allLogits every token's [n*vocab].
   */
  async forward(tokens: number[], pos: number, opts: { allLogits?: boolean; seq?: number } = {}): Promise<Float32Array> {
    const seq = opts.seq ?? 0, base = seq * this.contextLength;
    this.check(tokens, pos, seq);
    this.busy = true;
    this.ahead = undefined; // a step queued ahead runs first and is ignored
    try {
      const V = this.vocab;
      if (opts.allLogits) {
        const out = new Float32Array(tokens.length * V);
        for (let i = 0; i < tokens.length; i += this.maxBatch) {
          const chunk = tokens.slice(i, i + this.maxBatch);
          this.submit(chunk, pos + i, 'all', 0, false, base);
          out.set(new Float32Array(await this.read(this.acts.readLogits, chunk.length * V * 4, chunk.length)), i * V);
        }
        return out;
      }
      const [last, lastPos] = this.prefix(tokens, pos, base);
      this.submit(last, lastPos, 'last', 0, false, base);
      return new Float32Array(await this.read(this.acts.readLogits, V * 4, tokens.length));
    } finally {
      this.busy = false;
    }
  }

  /**
   * Runs tokens at positions pos… (filling the KV cache, as forward() does) and
   * returns every token's hidden state after the final norm, [n, dim] f32:
   * what embeddings pool. The output head does not run.
   */
  async hidden(tokens: number[], pos: number): Promise<Float32Array> {
    this.check(tokens, pos);
    const D = this.config.dim;
    if (D > this.vocab) throw new UsageError(`embeddings need the vocabulary (${this.vocab}) to be at least the model width (${D}): this model is not supported for embeddings`);
    this.busy = true;
    this.ahead = undefined;
    try {
      const out = new Float32Array(tokens.length * D);
      for (let i = 0; i < tokens.length; i += this.maxBatch) {
        const chunk = tokens.slice(i, i + this.maxBatch);
        this.submit(chunk, pos + i, 'hidden');
        out.set(new Float32Array(await this.read(this.acts.readLogits, chunk.length * D * 4, chunk.length)), i * D);
      }
      return out;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Like forward(), but returns only the argmax of the last token's logits (4
   * bytes read back). With `next`, the following greedy step (the argmax fed
   * back at the next position) is queued on the GPU before this one is read,
   * so the GPU does not wait for the readback and the next command encoding;
   * the next call with exactly that token and position then only collects it.
   * Any other call ignores it: it wrote the KV slot of a position that the
   * caller's own tokens will overwrite before anything attends to it.
   */
  async forwardArgmax(tokens: number[], pos: number, opts: { next?: boolean; seq?: number } = {}): Promise<number> {
    const seq = opts.seq ?? 0, base = seq * this.contextLength;
    this.check(tokens, pos, seq);
    this.busy = true;
    const queued = this.ahead;
    this.ahead = undefined;
    try {
      let slot: number;
      if (queued && queued.input === tokens[0] && tokens.length === 1 && queued.pos === pos && queued.seq === seq) {
        slot = queued.slot;
      } else {
        const [last, lastPos] = this.prefix(tokens, pos, base);
        this.slot ^= 1;
        slot = this.slot;
        this.submit(last, lastPos, 'argmax', slot, false, base);
      }
      const nextPos = pos + tokens.length;
      let ahead: { pos: number; seq: number; slot: number } | undefined;
      // Not on CPU rasterisers: there the GPU is the same two cores, and
      // encoding the next step while it runs cost s110m decode 8%.
      if (opts.next && !this.engine.cpuTuning && !this.prof && nextPos < this.contextLength) {
        this.slot ^= 1;
        ahead = { pos: nextPos, seq, slot: this.slot };
        this.submit([0], nextPos, 'argmax', ahead.slot, true, base);
      }
      const id = new Uint32Array(await this.read(this.acts.readBest[slot], 4, tokens.length))[0];
      if (id >= this.vocab) throw new GpuError('the logits are not finite (NaN): the model file may be corrupt; try noF16 (--no-f16)');
      if (ahead) this.ahead = { ...ahead, input: id };
      return id;
    } finally {
      this.busy = false;
    }
  }

  /**
   * One step for several sequences at once (a model loaded with sequences > 1):
   * each request feeds its tokens (a decode step's one, or a run of its
   * prompt) at positions pos… of its sequence, at most one request per
   * sequence and maxBatch tokens in all. Returns each request's last token's
   * argmax, and its logits [vocab] where it asks (sampling, logprobs, grammars).
   */
  async forwardBatch(rows: readonly BatchRow[]): Promise<BatchResult> {
    const b = this.batch;
    if (!b) throw new UsageError('forwardBatch() needs a model loaded with several sequences (LoadOptions.parallel)');
    for (const r of rows) this.check(r.tokens, r.pos, r.seq);
    // One token in all: the one-token path (its fused steps assume what a batched step cannot).
    if (rows.length === 1 && rows[0].tokens.length === 1) {
      const r = rows[0];
      if (!r.logits) return { ids: [await this.forwardArgmax(r.tokens, r.pos, { seq: r.seq })], logits: [undefined] };
      const logits = await this.forward(r.tokens, r.pos, { seq: r.seq });
      return { ids: [argmaxOf(logits)], logits: [logits] };
    }
    this.busy = true;
    this.ahead = undefined;
    try {
      const n = this.submitBatch(rows);
      return await b.result((buf, bytes, key) => this.read(buf, bytes, key), n);
    } finally {
      this.busy = false;
    }
  }

  /** Records and submits a batched step (BatchSteps.prepare checks and plans it); returns its token count. */
  protected submitBatch(rows: readonly BatchRow[]): number {
    const tokens = this.batch!.prepare(rows, this.contextLength, this.maxBatch);
    this.submit(tokens, 0, 'rows');
    return tokens.length;
  }

}
