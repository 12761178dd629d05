// quantizeFile: F32/F16/BF16 GGUF → quantized GGUF, streamed tensor by tensor
// in row chunks (memory ~ a few chunk buffers, not the model), written to a
// temp file of its own (`<out>.<pid>.<random>.tmp`, see src/util/atomic-write.ts)
// and renamed only when complete, so a failure or a kill never leaves a partial
// file under the output name, and two runs to the same output leave one of the
// two complete files. Metadata is carried over in order with
// general.file_type / general.quantization_version set; tensor order and names
// are preserved.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { metaKeys } from '../config.ts';
import { GgufError, UsageError } from '../errors.ts';
import { openGguf } from '../gguf/reader.ts';
import type { GgufFile, GgufKV, TensorInfo } from '../gguf/types.ts';
import { GgufWriter, kv } from '../gguf/writer.ts';
import { dequantize } from '../quant/dequant.ts';
import { GgmlType, bytesFor, typeInfo } from '../quant/table.ts';
import { type Target, chooseType, mixContext, shouldQuantize, targetByName } from './mix.ts';
import { EncodePool } from './pool.ts';

export interface QuantizeOptions {
  /** Compute per-tensor error statistics (costs a dequantization per chunk). */
  readonly report?: boolean;
  /** --pure: no per-tensor mix rules, only the base type (and fallbacks). */
  readonly pure?: boolean;
  /** Called after each chunk: bytes of input processed so far, total, current tensor. */
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
  /** Called once per tensor whose type fell back (row length vs block size). */
  readonly onNote?: (tensor: string, note: string) => void;
  /** Source floats per chunk (default 4 Mi = 16 MiB of f32). */
  readonly chunkElems?: number;
  /** Worker threads for encoding (default 1: the calling thread). Output bytes do not depend on it. */
  readonly threads?: number;
  /** Test hook: called before each tensor is written; throwing aborts the run. */
  readonly beforeTensor?: (index: number, name: string) => void;
}

export interface TensorReport {
  readonly name: string;
  readonly dims: readonly number[];
  readonly from: string;
  readonly to: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly note?: string;
  /** Present with `report`: root-mean-square error, max |error|, signal-to-noise in dB (Infinity if exact). */
  readonly rmse?: number;
  readonly maxAbs?: number;
  readonly snrDb?: number;
}

export interface QuantizeReport {
  readonly target: string;
  readonly ftype: number;
  readonly tensors: TensorReport[];
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly fileBytesOut: number;
  readonly seconds: number;
  /** Whole-model SNR over all quantized tensors (with `report`). */
  readonly snrDb?: number;
}

const FLOAT_TYPES = new Set<GgmlType>([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

function nGqa(f: GgufFile): number {
  const arch = f.kv.get(metaKeys.architecture)?.value;
  const num = (k: string) => {
    const v = f.kv.get(`${String(arch)}.${k}`)?.value;
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  };
  const h = num('attention.head_count');
  const hkv = num('attention.head_count_kv');
  return h && hkv ? h / hkv : 1;
}

/** Metadata for the output: input order kept, file type and quantization version set. */
function outputKv(f: GgufFile, target: Target): GgufKV[] {
  const out: GgufKV[] = [];
  const ft = kv.u32(metaKeys.fileType, target.ftype);
  const qv = kv.u32(metaKeys.quantizationVersion, 2);
  let haveFt = false;
  let haveQv = false;
  for (const e of f.kv.values()) {
    if (e.key === metaKeys.fileType) {
      out.push(ft);
      haveFt = true;
    } else if (e.key === metaKeys.quantizationVersion) {
      out.push(qv);
      haveQv = true;
    } else out.push(e);
  }
  if (!haveFt) out.push(ft);
  if (!haveQv) out.push(qv);
  return out;
}

/**
 * Quantizes inPath to outPath. `typeOrMix` is a target name (Q4_K_M, Q8_0, F16, …).
 * Throws UsageError for bad arguments or an already-quantized input.
 */
export async function quantizeFile(inPath: string, outPath: string, typeOrMix: string, opts: QuantizeOptions = {}): Promise<QuantizeReport> {
  const target = targetByName(typeOrMix);
  if (resolve(inPath) === resolve(outPath)) throw new UsageError(`output ${outPath} is the input file: pass a different output path`);
  if (!existsSync(inPath)) throw new UsageError(`input file ${inPath} does not exist: pass an F32/F16 GGUF`);
  const t0 = performance.now();
  const f = await openGguf(inPath);
  let writer: GgufWriter | undefined;
  const pool = new EncodePool(opts.threads ?? 1);
  try {
    const bad = f.tensors.find((t) => !FLOAT_TYPES.has(t.type.id));
    if (bad) throw new UsageError(`input is already quantized (${bad.type.name} in tensor ${bad.name}); quantize from an F16/F32 GGUF`);

    const ctx = mixContext(target, f.tensors, nGqa(f), opts.pure ?? false);
    const plan = f.tensors.map((t) => {
      if (!shouldQuantize(t.name, t.dims)) return { t, type: t.type.id, note: undefined };
      const c = chooseType(ctx, t.name, t.dims);
      return { t, type: c.type, note: c.note };
    });
    writer = await GgufWriter.create(outPath, { kv: outputKv(f, target), tensors: plan.map((p) => ({ name: p.t.name, dims: p.t.dims, type: p.type })), alignment: f.alignment, atomic: true });

    const total = f.tensors.reduce((a, t) => a + t.nBytes, 0);
    let done = 0;
    const reports: TensorReport[] = [];
    let sigAll = 0;
    let errAll = 0;
    for (let i = 0; i < plan.length; i++) {
      const { t, type, note } = plan[i];
      opts.beforeTensor?.(i, t.name);
      if (note) opts.onNote?.(t.name, note);
      const r = await convertTensor(f, t, type, writer, pool, opts, (n) => {
        done += n;
        opts.onProgress?.(done, total, t.name);
      });
      sigAll += r.sig;
      errAll += r.err;
      const to = typeInfo(type)!;
      reports.push({
        name: t.name,
        dims: t.dims,
        from: t.type.name,
        to: to.name,
        bytesIn: t.nBytes,
        bytesOut: bytesFor(to, t.nElements),
        note,
        ...(opts.report ? stats(r) : {}),
      });
    }
    // Taken from the layout, not a stat of outPath: another run may rename its own file there.
    const fileBytesOut = writer.layout.totalSize;
    await writer.close();
    writer = undefined;
    return {
      target: target.name,
      ftype: target.ftype,
      tensors: reports,
      bytesIn: total,
      bytesOut: reports.reduce((a, r) => a + r.bytesOut, 0),
      fileBytesOut,
      seconds: (performance.now() - t0) / 1000,
      ...(opts.report ? { snrDb: snr(sigAll, errAll) } : {}),
    };
  } finally {
    if (writer) await writer.abort();
    await pool.close();
    await f.close();
  }
}

interface Acc {
  sig: number;
  err: number;
  maxAbs: number;
  n: number;
}

const snr = (sig: number, err: number): number => (err === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(sig / err));

function stats(r: Acc): { rmse: number; maxAbs: number; snrDb: number } {
  return { rmse: Math.sqrt(r.err / Math.max(1, r.n)), maxAbs: r.maxAbs, snrDb: snr(r.sig, r.err) };
}

/** Streams one tensor: read rows in chunks, decode to f32, encode to `type`, write. */
async function convertTensor(f: GgufFile, t: TensorInfo, type: GgmlType, w: GgufWriter, pool: EncodePool, opts: QuantizeOptions, progress: (bytes: number) => void): Promise<Acc> {
  const acc: Acc = { sig: 0, err: 0, maxAbs: 0, n: 0 };
  const rowLen = t.dims[0];
  const rows = t.nElements / rowLen;
  const src = t.type;
  const dst = typeInfo(type)!;
  if (type === src.id && !opts.report) {
    // Same type (1-D norms, or an F16 tensor into an F16 file): copy the bytes in chunks.
    const step = 16 << 20;
    for (let off = 0; off < t.nBytes; off += step) {
      const n = Math.min(step, t.nBytes - off);
      await w.write(t.name, await f.readTensor(t, off, n));
      progress(n);
    }
    return acc;
  }
  const rowsPerChunk = Math.max(1, Math.floor((opts.chunkElems ?? 4 << 20) / rowLen));
  const srcRowBytes = bytesFor(src, rowLen);
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const nr = Math.min(rowsPerChunk, rows - r0);
    const n = nr * rowLen;
    const raw = await f.readTensor(t, r0 * srcRowBytes, nr * srcRowBytes);
    const x = dequantize(src.id, raw, n);
    const q = type === src.id ? raw : await pool.encode(type, x, rowLen);
    if (opts.report) {
      const y = type === GgmlType.F32 ? x : dequantize(type, q, n);
      for (let i = 0; i < n; i++) {
        const e = y[i] - x[i];
        acc.sig += x[i] * x[i];
        acc.err += e * e;
        const a = Math.abs(e);
        if (a > acc.maxAbs) acc.maxAbs = a;
      }
      acc.n += n;
    }
    if (q.length !== bytesFor(dst, n)) throw new GgufError(`internal: tensor ${t.name} chunk encoded to ${q.length} bytes, expected ${bytesFor(dst, n)}`);
    await w.write(t.name, q);
    progress(nr * srcRowBytes);
  }
  return acc;
}
