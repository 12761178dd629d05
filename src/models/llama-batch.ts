// Batched decode for a model that holds several sequences (LlamaModel,
// LoadOptions.parallel): one step runs the next token of each of N sequences
// as one batch of N tokens. The products, norms and the output head are the
// ordinary N-token (prefill) kernels; only the steps that touch the KV cache
// differ: RoPE + store and attention read each token's (position, first cache
// slot) from the `seqs` table (seq_table.wgsl), so each token lands in and
// attends to its own sequence's region of the cache, up to its own length.
// The tail takes every row's argmax (argmax.wgsl ROWS) and copies the ids,
// then the logits of the rows that asked for them, into one readback buffer:
//   read: u32 ids [S], then f32 logits [k, vocab] for the k rows asked for.
import type { BufferCategory, Engine } from '../gpu/engine.ts';
import { GpuError, UsageError } from '../errors.ts';
import { createArgmax } from './kernels.ts';
import type { Step } from './llama-parts.ts';

/** Most sequences a model may hold (a batched step is at most this many tokens). */
export const MAX_SEQUENCES = 64;

/** One row of a batched step: `token` at position `pos` of sequence `seq`; `logits`: read its logits back too. */
export interface BatchRow { seq: number; token: number; pos: number; logits?: boolean }

export interface BatchResult {
  /** Each row's argmax (after the family's logit scale and soft-cap). */
  ids: number[];
  /** The logits [vocab] of the rows that asked for them; undefined elsewhere. */
  logits: (Float32Array | undefined)[];
}

export interface BatchKernels {
  /** u32 pairs [S]: (position, first cache slot of its sequence) per row. */
  seqs: GPUBuffer;
  /** MAP_READ: ids [S] then the logits rows asked for. */
  read: GPUBuffer;
  /** Per layer, the RoPE + KV store and the attention that read `seqs`. */
  layers: { ropeKv: Step; attention: Step }[];
  /** Every row's argmax into the ids. */
  argmax: Step;
  /** Bytes of `read` a step with k logit rows fills. */
  readBytes(k: number): number;
  /** After the pass: the n rows' ids and the logits rows asked for into `read`. */
  copy(enc: GPUCommandEncoder, n: number, logitRows: readonly number[]): void;
  /** The result out of the bytes read back. */
  parse(bytes: ArrayBuffer, n: number, logitRows: readonly number[]): BatchResult;
}

/** LoadOptions.parallel as given (default 1), checked: a whole number in 1…min(64, maxBatch). */
export function checkSequences(n: number | undefined, maxBatch: number): number {
  if (n === undefined) return 1;
  const most = Math.min(MAX_SEQUENCES, maxBatch);
  if (!(Number.isInteger(n) && n >= 1 && n <= most)) throw new UsageError(`parallel ${n} must be a whole number of sequences in 1…${most}: pass e.g. parallel 4 (--parallel 4)`);
  return n;
}

/** The readback's expected-time key of a batched step (readback.ts): its rows and logit rows. */
export const batchKey = (n: number, k: number) => `batch ${n}/${k}`;

/** The buffers (the caller's `buffer` counts them) and the argmax; the per-layer kernels are pushed by the caller. */
export async function createBatchKernels(
  e: Engine,
  o: { sequences: number; vocab: number; logits: GPUBuffer; params: GPUBuffer; buffer: (category: BufferCategory, label: string, bytes: number, usage?: number) => GPUBuffer },
): Promise<BatchKernels> {
  const S = o.sequences;
  const seqs = o.buffer('activations', 'batch seqs', S * 8);
  const best = o.buffer('activations', 'batch best', S * 4);
  const read = o.buffer('staging', 'read batch', S * 4 + S * o.vocab * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const argmax = await createArgmax(e, { params: o.params, x: o.logits, out: best, n: o.vocab, rows: true });
  const rowBytes = o.vocab * 4;
  const at = S * 4; // the logits rows start after the ids
  return {
    seqs, read, argmax, layers: [],
    readBytes: (k) => at + k * rowBytes,
    parse(bytes, n, logitRows) {
      const ids = Array.from(new Uint32Array(bytes, 0, n));
      if (ids.some((id) => id >= o.vocab)) throw new GpuError('the logits are not finite (NaN): the model file may be corrupt; try noF16 (--no-f16)');
      const logits: (Float32Array | undefined)[] = new Array(n).fill(undefined);
      logitRows.forEach((r, k) => {
        logits[r] = new Float32Array(bytes, at + k * rowBytes, o.vocab);
      });
      return { ids, logits };
    },
    copy(enc, n, logitRows) {
      enc.copyBufferToBuffer(best, 0, read, 0, n * 4);
      // Consecutive rows asked for go in one copy.
      for (let k = 0; k < logitRows.length; ) {
        let j = k + 1;
        while (j < logitRows.length && logitRows[j] === logitRows[j - 1] + 1) j++;
        enc.copyBufferToBuffer(o.logits, logitRows[k] * rowBytes, read, at + k * rowBytes, (j - k) * rowBytes);
        k = j;
      }
    },
  };
}
