// Batched steps for a model that holds several sequences (LlamaModel,
// LoadOptions.parallel): one step runs, for each of several sequences, its
// next token (decode) or a run of prompt tokens, as one batch of n tokens.
// The products, norms and FFN are the ordinary n-token kernels (the products
// in a token tile of the sequences' count when n ≤ sequences, tile-matmul.ts;
// prefill's tile beyond); only the steps that touch the KV cache differ: RoPE
// + store and attention read each token's (position, first cache slot) from
// the `seqs` table (seq_table.wgsl), so each token lands in and attends to its
// own sequence's region of the cache, up to its own position.
// The tail keeps only each request's last token: those rows of the normed
// hidden state are copied to `headIn` [k, dim], the output head runs over the
// k rows, then every row's argmax (argmax.wgsl ROWS); the ids and the logits
// of the requests that asked for them go to one readback buffer:
//   read: u32 ids [S], then f32 logits [j, vocab] for the j requests asking.
import type { BufferCategory, Engine } from '../gpu/engine.ts';
import { GpuError, UsageError } from '../errors.ts';
import { createArgmax } from './kernels.ts';
import type { Step } from './llama-parts.ts';

/** Most sequences a model may hold (a step has at most one request per sequence). */
export const MAX_SEQUENCES = 64;

/** One request of a batched step: `tokens` of sequence `seq` at positions pos…; its result is its last token's (`logits`: read them back too). */
export interface BatchRow { seq: number; tokens: number[]; pos: number; logits?: boolean }

export interface BatchResult {
  /** Each request's argmax (after the family's logit scale and soft-cap). */
  ids: number[];
  /** The logits [vocab] of the requests that asked for them; undefined elsewhere. */
  logits: (Float32Array | undefined)[];
}

/** LoadOptions.parallel as given (default 1), checked: a whole number in 1…min(64, maxBatch). */
export function checkSequences(n: number | undefined, maxBatch: number): number {
  if (n === undefined) return 1;
  const most = Math.min(MAX_SEQUENCES, maxBatch);
  if (!(Number.isInteger(n) && n >= 1 && n <= most)) throw new UsageError(`parallel ${n} must be a whole number of sequences in 1…${most}: pass e.g. parallel 4 (--parallel 4)`);
  return n;
}

/** Index of the largest value (the lowest on ties, as argmax.wgsl). */
export function argmaxOf(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The readback's expected-time key of a batched step (readback.ts): its tokens and logits rows. */
export const batchKey = (n: number, j: number) => `batch ${n}/${j}`;

type Buffer = (category: BufferCategory, label: string, bytes: number, usage?: number) => GPUBuffer;

/** The buffers and tail kernels of batched steps, and the plan of the step being recorded. */
export class BatchSteps {
  /** u32 pairs [maxBatch]: (position, first cache slot of its sequence) per token. */
  readonly seqs: GPUBuffer;
  /** f32 [S, dim]: the normed hidden state of each request's last token. */
  readonly headIn: GPUBuffer;
  /** Uniform {k, 0, 0, 0}: the head, its post-processing and the argmax run over k rows. */
  readonly paramsOut: GPUBuffer;
  /** Per layer, the RoPE + KV store and the attention that read `seqs` (pushed by the model's build). */
  readonly layers: { ropeKv: Step; attention: Step }[] = [];
  /** The output head over headIn (and the family's logit scale/cap), set once the head's weight is there. */
  head?: Step;
  post?: Step;
  private readonly best: GPUBuffer;
  private readonly read: GPUBuffer;
  private argmax!: Step;
  /** The step being recorded: each request's last token row, and which requests want logits. */
  private plan = { outRows: [] as number[], logitRows: [] as number[] };

  private constructor(
    private readonly e: Engine,
    private readonly S: number,
    private readonly dim: number,
    private readonly vocab: number,
    private readonly logits: GPUBuffer,
    buffer: Buffer,
    maxBatch: number,
  ) {
    this.seqs = buffer('activations', 'batch seqs', maxBatch * 8);
    this.headIn = buffer('activations', 'batch head input', S * dim * 4);
    this.best = buffer('activations', 'batch best', S * 4);
    this.paramsOut = buffer('other', 'batch params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.read = buffer('staging', 'read batch', S * 4 + S * vocab * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  static async create(e: Engine, o: { sequences: number; maxBatch: number; dim: number; vocab: number; logits: GPUBuffer; buffer: Buffer }): Promise<BatchSteps> {
    const b = new BatchSteps(e, o.sequences, o.dim, o.vocab, o.logits, o.buffer, o.maxBatch);
    b.argmax = await createArgmax(e, { params: b.paramsOut, x: o.logits, out: b.best, n: o.vocab, rows: true });
    return b;
  }

  /**
   * Checks the step's requests against the model (distinct sequences, at most
   * `maxBatch` tokens in all), writes its tables, and returns its tokens in order.
   */
  prepare(rows: readonly BatchRow[], ctx: number, maxBatch: number): number[] {
    const n = rows.reduce((s, r) => s + r.tokens.length, 0);
    if (rows.length < 1 || rows.length > this.S || new Set(rows.map((r) => r.seq)).size !== rows.length || n > maxBatch) {
      throw new UsageError(`a batched step takes 1…${this.S} requests of distinct sequences and at most ${maxBatch} tokens, got ${rows.length} requests of ${n} tokens`);
    }
    const table = new Uint32Array(2 * n);
    const outRows: number[] = [];
    let t = 0;
    for (const r of rows) {
      for (let j = 0; j < r.tokens.length; j++, t++) table.set([r.pos + j, r.seq * ctx], 2 * t);
      outRows.push(t - 1);
    }
    this.e.device.queue.writeBuffer(this.seqs, 0, table);
    this.e.device.queue.writeBuffer(this.paramsOut, 0, new Uint32Array([rows.length, 0, 0, 0]));
    this.plan = { outRows, logitRows: rows.flatMap((r, i) => (r.logits ? [i] : [])) };
    return rows.flatMap((r) => r.tokens);
  }

  /** Rows of the step being recorded that go through the head (one per request). */
  get headRows(): number {
    return this.plan.outRows.length;
  }

  /** Between passes: each request's last row of the normed hidden state `xn` [n, dim] into headIn. */
  gather(enc: GPUCommandEncoder, xn: GPUBuffer): void {
    const row = this.dim * 4;
    for (const [k, r] of this.plan.outRows.entries()) enc.copyBufferToBuffer(xn, r * row, this.headIn, k * row, row);
  }

  /** In the tail's pass, after the head: every result row's argmax. */
  encodeArgmax(pass: GPUComputePassEncoder): void {
    this.argmax.encode(pass, this.plan.outRows.length);
  }

  /** After the pass: the ids and the logits rows asked for into the readback buffer. */
  copy(enc: GPUCommandEncoder): void {
    const k = this.plan.outRows.length, rowBytes = this.vocab * 4, at = this.S * 4;
    enc.copyBufferToBuffer(this.best, 0, this.read, 0, k * 4);
    const want = this.plan.logitRows;
    for (let i = 0; i < want.length; ) {
      let j = i + 1; // consecutive rows in one copy
      while (j < want.length && want[j] === want[j - 1] + 1) j++;
      enc.copyBufferToBuffer(this.logits, want[i] * rowBytes, this.read, at + i * rowBytes, (j - i) * rowBytes);
      i = j;
    }
  }

  /** Maps the readback of the step just submitted (`read` as the model reads: expected-time key and sleep) and parses it. */
  async result(read: (buf: GPUBuffer, bytes: number, key: string) => Promise<ArrayBuffer>, tokens: number): Promise<BatchResult> {
    const { outRows, logitRows } = this.plan;
    const k = outRows.length, rowBytes = this.vocab * 4, at = this.S * 4;
    const bytes = await read(this.read, at + logitRows.length * rowBytes, batchKey(tokens, logitRows.length));
    const ids = Array.from(new Uint32Array(bytes, 0, k));
    if (ids.some((id) => id >= this.vocab)) throw new GpuError('the logits are not finite (NaN): the model file may be corrupt; try noF16 (--no-f16)');
    const logits: (Float32Array | undefined)[] = new Array(k).fill(undefined);
    for (const [i, r] of logitRows.entries()) logits[r] = new Float32Array(bytes, at + i * rowBytes, this.vocab);
    return { ids, logits };
  }
}
