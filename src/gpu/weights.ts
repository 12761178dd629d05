// Weight upload: a GGUF tensor streamed from the file in bounded chunks into
// one or more GPU storage buffers ("parts", split by rows so each fits
// maxStorageBufferBindingSize), repacked per src/gpu/formats.ts on the way.
// Host memory stays about one chunk (CHUNK_BYTES) whatever the tensor size.
// A 3-D tensor [experts, rows, cols] (ggml dims [cols, rows, experts]: MoE
// expert weights) is split on the expert axis only: every part holds whole
// experts, so a kernel finds expert e's rows in exactly one binding.
import type { GgufFile, TensorInfo } from '../gguf/types.ts';
import type { TypeInfo } from '../quant/table.ts';
import { GpuError, printable, UsageError } from '../errors.ts';
import type { Engine } from './engine.ts';
import { gpuFormat, partBytes, rowBytes } from './formats.ts';

export interface GpuWeight {
  name: string;
  type: TypeInfo;
  rows: number;
  cols: number;
  /** Bytes on the GPU (padding included). */
  bytes: number;
  parts: { buffer: GPUBuffer; firstRow: number; rows: number }[];
  /** Rows of each tensor when several were concatenated (uploadConcat); absent for one tensor. */
  segments?: number[];
  /** Rows per block when two tensors' rows alternate in blocks (UploadOptions.interleave); the kernels' yrow() undoes it. */
  interleave?: number;
  /**
   * A 3-D tensor (MoE experts): the expert count and rows per expert; `rows`
   * is then experts × expertRows, and each part starts and ends on an expert
   * (part.firstRow / expertRows is its first expert).
   */
  experts?: number;
  expertRows?: number;
}

export interface UploadOptions {
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
  /** Override the split limit (tests force small parts). Default maxStorageBufferBindingSize. */
  maxBindingBytes?: number;
  /** Host staging chunk size; default 32 MiB. */
  chunkBytes?: number;
  /**
   * uploadConcat of two tensors of F rows each: their rows interleaved in
   * blocks of this many (GpuWeight.interleave; F a multiple of it).
   */
  interleave?: number;
}

const CHUNK_BYTES = 32 << 20;

/** Rows and cols of a tensor as the kernels see it. 1-D: rows = 1. */
export function tensorShape(t: TensorInfo): { rows: number; cols: number } {
  const cols = t.dims[0] ?? 1;
  let rows = 1;
  for (let i = 1; i < t.dims.length; i++) rows *= t.dims[i];
  return { rows, cols };
}

/**
 * Several tensors of one type and row length as one weight, their rows one
 * after another (q|k|v, gate|up), so that one dispatch computes all of them;
 * the kernels write each tensor's rows to its own output region (segments).
 * Bytes on the GPU are the same as for separate uploads.
 */
export async function uploadConcat(engine: Engine, file: Pick<GgufFile, 'readTensor'>, ts: readonly TensorInfo[], name: string, opts: UploadOptions = {}): Promise<GpuWeight> {
  if (ts.length === 1) return uploadTensor(engine, file, ts[0], opts);
  if (ts.length > 3) throw new GpuError(`internal error: ${name} concatenates ${ts.length} tensors; the kernels take at most 3`);
  if (ts.some((t) => t.dims.length === 3)) throw new GpuError(`internal error: ${name} concatenates 3-D (expert) tensors, which uploadConcat does not split by expert`);
  const shapes = ts.map(tensorShape);
  const cols = shapes[0].cols;
  if (ts.some((t, i) => t.type.id !== ts[0].type.id || shapes[i].cols !== cols)) throw new GpuError(`internal error: ${name} concatenates tensors of different types or row lengths`);
  const rows = shapes.reduce((s, x) => s + x.rows, 0);
  const nBytes = ts.reduce((s, t) => s + t.nBytes, 0);
  const virt: TensorInfo = { name, dims: [cols, rows], type: ts[0].type, nElements: rows * cols, nBytes, offset: -1 };
  const G = opts.interleave ?? 0;
  if (G) {
    if (ts.length !== 2 || shapes[0].rows !== shapes[1].rows || shapes[0].rows % G) throw new GpuError(`internal error: ${name} cannot interleave its rows in blocks of ${G}`);
    // Both tensors in memory, rows reordered: block b of the weight = rows bG..bG+G-1 of the first, then of the second.
    const [a, b] = await Promise.all(ts.map((t) => file.readTensor(t)));
    const rb = a.byteLength / shapes[0].rows;
    const all = new Uint8Array(nBytes);
    for (let blk = 0; blk < shapes[0].rows / G; blk++) {
      all.set(a.subarray(blk * G * rb, (blk + 1) * G * rb), 2 * blk * G * rb);
      all.set(b.subarray(blk * G * rb, (blk + 1) * G * rb), (2 * blk + 1) * G * rb);
    }
    const w = await uploadTensor(engine, { readTensor: async (_t, start = 0, length = nBytes - start) => all.slice(start, start + length) }, virt, opts);
    w.segments = shapes.map((s) => s.rows);
    w.interleave = G;
    return w;
  }
  // Byte ranges of the virtual tensor map onto the tensors in order.
  const source = {
    async readTensor(_t: TensorInfo, start = 0, length = nBytes - start): Promise<Uint8Array> {
      const out = new Uint8Array(length);
      let base = 0;
      for (const t of ts) {
        const lo = Math.max(start, base);
        const hi = Math.min(start + length, base + t.nBytes);
        if (lo < hi) out.set(await file.readTensor(t, lo - base, hi - lo), lo - start);
        base += t.nBytes;
      }
      return out;
    },
  };
  const w = await uploadTensor(engine, source, virt, opts);
  w.segments = shapes.map((s) => s.rows);
  return w;
}

export async function uploadTensor(engine: Engine, file: Pick<GgufFile, 'readTensor'>, t: TensorInfo, opts: UploadOptions = {}): Promise<GpuWeight> {
  const fmt = gpuFormat(t.type, t.name);
  const { rows, cols } = tensorShape(t);
  if (cols % fmt.colsMultiple !== 0 || cols % t.type.blockElems !== 0) {
    throw new GpuError(`tensor ${printable(t.name)} has rows of ${cols} elements, not a multiple of ${fmt.colsMultiple} as ${t.type.name} requires: the file is corrupt`);
  }
  const rb = rowBytes(t.type, cols);
  const maxBinding = Math.min(opts.maxBindingBytes ?? engine.limits.maxStorageBufferBindingSize, engine.limits.maxStorageBufferBindingSize, engine.limits.maxBufferSize);
  // Rows per part; even so that chunks of the d plane / f16 rows stay u32-aligned.
  let perPart = Math.floor((maxBinding - 16) / rb);
  if (perPart >= 2) perPart -= perPart % 2;
  if (perPart < 1) throw new GpuError(`tensor ${printable(t.name)}: one row (${rb} B) exceeds the GPU's storage binding limit (${maxBinding} B): use a smaller model`);
  // Experts: whole experts per part. (A part's row count may be odd: each part
  // is its own buffer and chunks inside it still start on even rows.)
  const experts = t.dims.length === 3 ? t.dims[2] : 0;
  const expertRows = experts ? t.dims[1] : 0;
  if (experts) {
    perPart = Math.floor((maxBinding - 16) / (expertRows * rb)) * expertRows;
    if (perPart < 1) throw new GpuError(`tensor ${printable(t.name)}: one expert (${expertRows * rb} B) exceeds the GPU's storage binding limit (${maxBinding} B): use a smaller model`);
  }
  const sb = fmt.scaleBytes ?? 2;
  const chunk = opts.chunkBytes ?? CHUNK_BYTES;
  let chunkRows = Math.max(1, Math.floor(chunk / rb));
  if (chunkRows >= 2) chunkRows -= chunkRows % 2;
  else chunkRows = Math.min(2, rows); // two rows keep alignment even for huge rows
  // Tiled layouts are reordered within whole tiles: chunks start on tile boundaries.
  const tile = fmt.tile ?? 0;
  if (tile) chunkRows = Math.max(tile, chunkRows - (chunkRows % tile));
  // A one-byte scale plane (MXFP4) needs chunk starts on whole words of it.
  if (fmt.dOffset >= 0 && (chunkRows * (cols / t.type.blockElems) * sb) % 4) throw new GpuError(`internal error: ${printable(t.name)}: chunks of ${chunkRows} rows leave its scale plane unaligned`);

  const parts: GpuWeight['parts'] = [];
  let bytes = 0;
  try {
    for (let first = 0; first < rows; first += perPart) {
      const n = Math.min(perPart, rows - first);
      const size = partBytes(t.type, n, cols);
      const buffer = engine.createBuffer('weights', `${t.name}[${parts.length}]`, size, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
      parts.push({ buffer, firstRow: first, rows: n });
      bytes += size;
      const nb = cols / t.type.blockElems;
      const body = t.type.blockBytes - sb;
      const dBase = n * nb * body; // byte where the d plane starts (repacked formats)
      for (let r0 = 0; r0 < n; r0 += chunkRows) {
        if (opts.signal?.aborted) throw new UsageError(`upload of ${printable(t.name)} aborted`);
        const cr = Math.min(chunkRows, n - r0);
        const src = await file.readTensor(t, (first + r0) * rb, cr * rb);
        if (fmt.dOffset < 0) {
          writePadded(engine, buffer, r0 * rb, src);
        } else {
          // Split blocks into bodies and d values (see formats.ts).
          const { bodies, ds } = sb === 1 ? splitBlocks8(src, cr, nb, t.type.blockBytes, tile) : splitBlocks(src, cr, nb, t.type.blockBytes, fmt.dOffset, tile);
          writePadded(engine, buffer, r0 * nb * body, bodies);
          writePadded(engine, buffer, dBase + r0 * nb * sb, ds);
        }
        opts.onBytes?.(src.byteLength);
        // Bound Dawn's own staging: let each chunk drain before the next.
        if (src.byteLength >= 1 << 20) await engine.device.queue.onSubmittedWorkDone();
      }
    }
  } catch (e) {
    for (const p of parts) engine.destroyBuffer(p.buffer);
    throw e;
  }
  engine.check();
  return { name: t.name, type: t.type, rows, cols, bytes, parts, ...(experts ? { experts, expertRows } : {}) };
}

/**
 * Moves each block's f16 scale (at byte dOff) out of `rows` rows of `nb`
 * blocks of `bb` bytes: bodies (bb - 2 bytes each) and the d plane, both in
 * the tiled block order when `tile` > 0 (rows start on a tile boundary).
 * Block sizes and dOff are even, so the copy runs over u16 words: a 1 GB Q8_0
 * file repacks in about a second (per-block subarray copies took 5 s).
 */
export function splitBlocks(src: Uint8Array, rows: number, nb: number, bb: number, dOff: number, tile: number): { bodies: Uint8Array; ds: Uint8Array } {
  if (bb % 2 || dOff % 2) throw new GpuError(`internal error: block of ${bb} bytes with scale at ${dOff} is not u16-aligned`);
  const aligned = src.byteOffset % 2 === 0 ? src : src.slice();
  const s16 = new Uint16Array(aligned.buffer, aligned.byteOffset, (rows * nb * bb) / 2);
  const bw = (bb - 2) / 2, bbw = bb / 2, dw = dOff / 2;
  const b16 = new Uint16Array(rows * nb * bw);
  const b32 = new Uint32Array(b16.buffer);
  const d16 = new Uint16Array(rows * nb);
  for (let r = 0; r < rows; r++) {
    const t0 = tile ? r - (r % tile) : r;
    const tw = tile ? Math.min(tile, rows - t0) : 1;
    // Block c of row r goes to first + c * step (formats.ts blockIndex).
    const first = tile ? t0 * nb + (r - t0) : r * nb;
    const step = tile ? tw : 1;
    for (let c = 0; c < nb; c++) {
      const sIdx = (r * nb + c) * bbw;
      const dst = first + c * step;
      const o = dst * bw;
      d16[dst] = s16[sIdx + dw];
      if (dw === 0) {
        // Scale first (Q4_0, Q5_0, Q8_0, IQ4_NL): the body is whole u32 words on the destination side.
        const o32 = o >> 1;
        for (let k = 0; k < bw; k += 2) b32[o32 + (k >> 1)] = s16[sIdx + 1 + k] | (s16[sIdx + 2 + k] << 16);
      } else {
        for (let k = 0; k < dw; k++) b16[o + k] = s16[sIdx + k];
        for (let k = dw + 1; k < bbw; k++) b16[o + k - 1] = s16[sIdx + k];
      }
    }
  }
  return { bodies: new Uint8Array(b16.buffer), ds: new Uint8Array(d16.buffer) };
}

/**
 * splitBlocks for a one-byte scale first in the block (MXFP4: e, then a
 * 4k-byte body): bodies in the (tiled) block order and the scale bytes in the
 * same order.
 */
export function splitBlocks8(src: Uint8Array, rows: number, nb: number, bb: number, tile: number): { bodies: Uint8Array; ds: Uint8Array } {
  if ((bb - 1) % 4) throw new GpuError(`internal error: block of ${bb} bytes with a one-byte scale has no whole-word body`);
  const bw = (bb - 1) / 4;
  const b32 = new Uint32Array(rows * nb * bw);
  const ds = new Uint8Array(rows * nb);
  // Unaligned little-endian words through a DataView: 2x faster than bytewise.
  const dv = new DataView(src.buffer, src.byteOffset, rows * nb * bb);
  for (let r = 0; r < rows; r++) {
    const t0 = tile ? r - (r % tile) : r;
    const first = tile ? t0 * nb + (r - t0) : r * nb;
    const step = tile ? Math.min(tile, rows - t0) : 1;
    for (let c = 0; c < nb; c++) {
      const s = (r * nb + c) * bb;
      const dst = first + c * step;
      ds[dst] = src[s];
      const o = dst * bw;
      for (let k = 0; k < bw; k++) b32[o + k] = dv.getUint32(s + 1 + 4 * k, true);
    }
  }
  return { bodies: new Uint8Array(b32.buffer), ds };
}

/** queue.writeBuffer needs offsets and sizes that are multiples of 4; the tail is zero-padded. */
function writePadded(engine: Engine, buf: GPUBuffer, offset: number, data: Uint8Array): void {
  if (offset % 4 !== 0) throw new GpuError(`internal error: unaligned weight write at ${offset}`);
  const n = data.byteLength;
  const whole = n & ~3;
  if (whole > 0) engine.device.queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, whole);
  if (whole < n) {
    const tail = new Uint8Array(4);
    tail.set(data.subarray(whole));
    engine.device.queue.writeBuffer(buf, offset + whole, tail);
  }
}

/** Frees a weight's buffers. */
export function destroyWeight(engine: Engine, w: GpuWeight): void {
  for (const p of w.parts) engine.destroyBuffer(p.buffer);
  w.parts = [];
}
