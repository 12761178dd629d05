// GGUF v3 writer. The header (metadata + tensor infos) is built in memory; all
// tensor offsets follow from the declared shapes, so tensor data can then be
// streamed in declaration order, chunk by chunk, with bounded memory.
// Each tensor's data starts on an `alignment` boundary (llama.cpp's layout):
//   header | pad | t0 | pad | t1 | pad | ... | tN | pad
import { GgufError } from '../errors.ts';
import { createTemp, type TempFile } from '../util/atomic-write.ts';
import { type GgmlType, type TypeInfo, typeInfo } from '../quant/table.ts';
import { type GgufArray, type GgufKV, type GgufValue, GgufValueType } from './types.ts';

export interface TensorSpec {
  readonly name: string;
  /** ggml order: dims[0] is the row length. */
  readonly dims: readonly number[];
  readonly type: GgmlType | TypeInfo;
}

export interface WriterOptions {
  readonly kv: readonly GgufKV[];
  readonly tensors: readonly TensorSpec[];
  /** Tensor data alignment; written as general.alignment when not 32. Default: general.alignment from kv, else 32. */
  readonly alignment?: number;
  /**
   * Write to a temp file of this writer's own (`<path>.<pid>.<random>.tmp`, exclusive),
   * fsync and rename on close: a crash never leaves a half file under `path`, and two
   * writers to the same path each rename a complete file (the last one wins).
   */
  readonly atomic?: boolean;
}

const arr = (itemType: GgufValueType, values: GgufArray['values']): GgufArray => ({ itemType, values });

/** Typed metadata entry constructors: callers always state the GGUF value type. */
export const kv = {
  u8: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.UINT8, value: v }),
  i8: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.INT8, value: v }),
  u16: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.UINT16, value: v }),
  i16: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.INT16, value: v }),
  u32: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.UINT32, value: v }),
  i32: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.INT32, value: v }),
  f32: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.FLOAT32, value: v }),
  f64: (key: string, v: number): GgufKV => ({ key, type: GgufValueType.FLOAT64, value: v }),
  u64: (key: string, v: number | bigint): GgufKV => ({ key, type: GgufValueType.UINT64, value: BigInt(v) }),
  i64: (key: string, v: number | bigint): GgufKV => ({ key, type: GgufValueType.INT64, value: BigInt(v) }),
  bool: (key: string, v: boolean): GgufKV => ({ key, type: GgufValueType.BOOL, value: v }),
  str: (key: string, v: string): GgufKV => ({ key, type: GgufValueType.STRING, value: v }),
  strArray: (key: string, v: readonly string[]): GgufKV => ({ key, type: GgufValueType.ARRAY, value: arr(GgufValueType.STRING, v as string[]) }),
  f32Array: (key: string, v: ArrayLike<number>): GgufKV => ({ key, type: GgufValueType.ARRAY, value: arr(GgufValueType.FLOAT32, Float32Array.from(v)) }),
  i32Array: (key: string, v: ArrayLike<number>): GgufKV => ({ key, type: GgufValueType.ARRAY, value: arr(GgufValueType.INT32, Int32Array.from(v)) }),
  u32Array: (key: string, v: ArrayLike<number>): GgufKV => ({ key, type: GgufValueType.ARRAY, value: arr(GgufValueType.UINT32, Uint32Array.from(v)) }),
  /** Any array, including nested ones: `kv.array(k, GgufValueType.ARRAY, [kv.arrayValue(...), ...])`. */
  array: (key: string, itemType: GgufValueType, values: GgufArray['values']): GgufKV => ({ key, type: GgufValueType.ARRAY, value: arr(itemType, values) }),
  arrayValue: arr,
};

const enc = new TextEncoder();

/** Growable little-endian byte buffer for the header. */
class Enc {
  buf = new Uint8Array(4096);
  dv = new DataView(this.buf.buffer);
  n = 0;
  private room(k: number): number {
    if (this.n + k > this.buf.length) {
      const nb = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
      nb.set(this.buf.subarray(0, this.n));
      this.buf = nb;
      this.dv = new DataView(nb.buffer);
    }
    const at = this.n;
    this.n += k;
    return at;
  }
  u8(v: number) { const at = this.room(1); this.dv.setUint8(at, v); }
  i8(v: number) { const at = this.room(1); this.dv.setInt8(at, v); }
  u16(v: number) { const at = this.room(2); this.dv.setUint16(at, v, true); }
  i16(v: number) { const at = this.room(2); this.dv.setInt16(at, v, true); }
  u32(v: number) { const at = this.room(4); this.dv.setUint32(at, v, true); }
  i32(v: number) { const at = this.room(4); this.dv.setInt32(at, v, true); }
  f32(v: number) { const at = this.room(4); this.dv.setFloat32(at, v, true); }
  f64(v: number) { const at = this.room(8); this.dv.setFloat64(at, v, true); }
  u64(v: number | bigint) { const at = this.room(8); this.dv.setBigUint64(at, BigInt(v), true); }
  i64(v: number | bigint) { const at = this.room(8); this.dv.setBigInt64(at, BigInt(v), true); }
  bytes(b: Uint8Array) { const at = this.room(b.length); this.buf.set(b, at); } // room() may replace buf
  /** u64 byte length + UTF-8, encoded in place (no per-string allocation). */
  str(s: string) {
    const at = this.room(8 + s.length * 3); // UTF-8 worst case: 3 bytes per UTF-16 unit
    const { written } = enc.encodeInto(s, this.buf.subarray(at + 8));
    this.dv.setBigUint64(at, BigInt(written), true);
    this.n = at + 8 + written;
  }
  done(): Uint8Array { return this.buf.subarray(0, this.n); }
}

function badValue(what: string, v: unknown): never {
  throw new GgufError(`cannot write ${what}: value ${String(v)} does not fit its GGUF type; fix the caller`);
}

function writeScalar(e: Enc, t: GgufValueType, v: unknown, what: string | (() => string)): void {
  if (t === GgufValueType.STRING && typeof v === 'string') { e.str(v); return; } // hot path: token arrays
  const bad = (w: string | (() => string), x: unknown) => badValue(typeof w === 'string' ? w : w(), x);
  const num = (): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : bad(what, v));
  const int = (lo: number, hi: number): number => { const x = num(); return Number.isInteger(x) && x >= lo && x <= hi ? x : bad(what, v); };
  switch (t) {
    case GgufValueType.UINT8: e.u8(int(0, 255)); return;
    case GgufValueType.INT8: e.i8(int(-128, 127)); return;
    case GgufValueType.UINT16: e.u16(int(0, 65535)); return;
    case GgufValueType.INT16: e.i16(int(-32768, 32767)); return;
    case GgufValueType.UINT32: e.u32(int(0, 2 ** 32 - 1)); return;
    case GgufValueType.INT32: e.i32(int(-(2 ** 31), 2 ** 31 - 1)); return;
    case GgufValueType.FLOAT32: e.f32(num()); return;
    case GgufValueType.FLOAT64: e.f64(num()); return;
    case GgufValueType.BOOL: typeof v === 'boolean' ? e.u8(v ? 1 : 0) : bad(what, v); return;
    case GgufValueType.UINT64: typeof v === 'bigint' ? (v >= 0n && v < 2n ** 64n ? e.u64(v) : bad(what, v)) : e.u64(int(0, Number.MAX_SAFE_INTEGER)); return;
    case GgufValueType.INT64: typeof v === 'bigint' ? (v >= -(2n ** 63n) && v < 2n ** 63n ? e.i64(v) : bad(what, v)) : e.i64(int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)); return;
    case GgufValueType.STRING: typeof v === 'string' ? e.str(v) : bad(what, v); return;
    default: throw new GgufError(`cannot write ${what}: unknown GGUF value type ${t}; use a GgufValueType`);
  }
}

function writeValue(e: Enc, t: GgufValueType, v: GgufValue, what: string | (() => string)): void {
  if (t !== GgufValueType.ARRAY) { writeScalar(e, t, v, what); return; }
  if (typeof v !== 'object' || v === null || !('values' in v)) badValue(typeof what === 'string' ? what : what(), v);
  const a = v as GgufArray;
  e.u32(a.itemType);
  const vals = a.values as ArrayLike<unknown>;
  e.u64(vals.length);
  const base = () => (typeof what === 'string' ? what : what());
  let i = 0;
  if (a.itemType === GgufValueType.STRING) for (; i < vals.length && typeof vals[i] === 'string'; i++) e.str(vals[i] as string);
  for (; i < vals.length; i++) writeValue(e, a.itemType, vals[i] as GgufValue, () => `${base()}[${i}]`);
}

function resolveType(t: GgmlType | TypeInfo, name: string): TypeInfo {
  const info = typeof t === 'number' ? typeInfo(t) : t;
  if (!info) throw new GgufError(`cannot write tensor "${name}": unknown ggml type ${String(t)}; use a GgmlType`);
  return info;
}

export interface Layout {
  header: Uint8Array;
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataStart: number;
  /** Per tensor: absolute offset and byte size. */
  offsets: number[];
  sizes: number[];
  totalSize: number;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Encodes the header and computes every tensor's position. */
export function layoutGguf(opts: Pick<WriterOptions, 'kv' | 'tensors' | 'alignment'>): Layout {
  const kvs = [...opts.kv];
  const alKv = kvs.find((k) => k.key === 'general.alignment');
  const alignment = opts.alignment ?? (alKv ? Number(alKv.value) : 32);
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError(`cannot write GGUF: alignment ${alignment} is not a power of two; use 32`);
  }
  if (alKv && Number(alKv.value) !== alignment) throw new GgufError(`cannot write GGUF: general.alignment ${String(alKv.value)} disagrees with the alignment option ${alignment}`);
  if (!alKv && alignment !== 32) kvs.push(kv.u32('general.alignment', alignment));

  const e = new Enc();
  e.u32(0x46554747); // "GGUF"
  e.u32(3);
  e.u64(opts.tensors.length);
  e.u64(kvs.length);
  const keys = new Set<string>();
  for (const k of kvs) {
    if (keys.has(k.key)) throw new GgufError(`cannot write GGUF: duplicate metadata key "${k.key}"`);
    keys.add(k.key);
    e.str(k.key);
    e.u32(k.type);
    writeValue(e, k.type, k.value, `metadata key "${k.key}"`);
  }
  const names = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let rel = 0;
  for (const t of opts.tensors) {
    const type = resolveType(t.type, t.name);
    if (names.has(t.name)) throw new GgufError(`cannot write GGUF: duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw new GgufError(`cannot write tensor "${t.name}": dims [${t.dims.join(', ')}] must be 1 to 4 positive integers`);
    }
    if (t.dims[0]! % type.blockElems !== 0) {
      throw new GgufError(`cannot write tensor "${t.name}": row length ${t.dims[0]} is not a multiple of the ${type.name} block size ${type.blockElems}; pick another type`);
    }
    const n = t.dims.reduce((a, b) => a * b, 1);
    const size = (n / type.blockElems) * type.blockBytes;
    e.str(t.name);
    e.u32(t.dims.length);
    for (const d of t.dims) e.u64(d);
    e.u32(type.id);
    e.u64(rel);
    offsets.push(rel);
    sizes.push(size);
    rel = alignUp(rel + size, alignment);
  }
  const header = e.done();
  const dataStart = alignUp(header.length, alignment);
  return { header, alignment, dataStart, offsets: offsets.map((o) => o + dataStart), sizes, totalSize: opts.tensors.length ? dataStart + rel : header.length };
}

/** Writes a whole GGUF into memory (tests, small files). Each tensor carries its bytes. */
export function writeGgufToBytes(opts: { kv: readonly GgufKV[]; tensors: readonly (TensorSpec & { data: Uint8Array })[]; alignment?: number }): Uint8Array {
  const l = layoutGguf(opts);
  const out = new Uint8Array(l.totalSize);
  out.set(l.header, 0);
  opts.tensors.forEach((t, i) => {
    if (t.data.length !== l.sizes[i]) throw new GgufError(`cannot write tensor "${t.name}": got ${t.data.length} bytes, its shape needs ${l.sizes[i]}`);
    out.set(t.data, l.offsets[i]);
  });
  return out;
}

type Handle = Awaited<ReturnType<typeof import('node:fs/promises').open>>;

/** Streaming file writer: create() writes the header; then tensor data in declaration order; then close(). */
export class GgufWriter {
  private idx = 0; // tensor being written
  private done = 0; // bytes of it written
  private closed = false;

  private constructor(
    private readonly fh: Handle,
    readonly path: string,
    private readonly temp: TempFile | undefined,
    private readonly names: string[],
    readonly layout: Layout,
  ) {}

  /** With `atomic`, the temp file written until close(); undefined otherwise. */
  get tempPath(): string | undefined { return this.temp?.tmp; }

  static async create(path: string, opts: WriterOptions): Promise<GgufWriter> {
    const l = layoutGguf(opts);
    let fh: Handle;
    let temp: TempFile | undefined;
    if (opts.atomic) {
      temp = await createTemp(path);
      fh = temp.fh;
    } else {
      const { open } = await import('node:fs/promises');
      try {
        fh = await open(path, 'w');
      } catch (e) {
        throw new GgufError(`cannot create ${path}: ${(e as Error).message.split('\n')[0]}; check the output path`);
      }
    }
    const w = new GgufWriter(fh, path, temp, opts.tensors.map((t) => t.name), l);
    try {
      await w.put(l.header, 0);
      if (opts.tensors.length) await w.put(new Uint8Array(l.dataStart - l.header.length), l.header.length);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w;
  }

  private async put(b: Uint8Array, pos: number): Promise<void> {
    let off = 0;
    try {
      while (off < b.length) {
        const { bytesWritten } = await this.fh.write(b, off, b.length - off, pos + off);
        off += bytesWritten;
      }
    } catch (e) {
      // ENOSPC and the like: one line, not an internal error.
      throw new GgufError(`cannot write ${this.path}: ${(e as Error).message.split('\n')[0]}; check the disk space`);
    }
  }

  /** Name of the tensor the next bytes belong to, or undefined when all are written. */
  get current(): string | undefined { return this.names[this.idx]; }

  /** Appends a chunk of the current tensor's data (must be `name`); pads after its last byte. */
  async write(name: string, chunk: Uint8Array): Promise<void> {
    if (this.closed) throw new GgufError(`cannot write tensor "${name}" to ${this.path}: the writer is closed`);
    if (name !== this.names[this.idx]) {
      throw new GgufError(`cannot write tensor "${name}" to ${this.path}: tensors must be written in declaration order; expected "${this.names[this.idx] ?? '(none left)'}"`);
    }
    const size = this.layout.sizes[this.idx]!;
    if (this.done + chunk.length > size) {
      throw new GgufError(`cannot write tensor "${name}": ${this.done + chunk.length} bytes exceed its ${size}-byte shape`);
    }
    const at = this.layout.offsets[this.idx]!;
    await this.put(chunk, at + this.done);
    this.done += chunk.length;
    if (this.done === size) {
      const end = at + size;
      const next = this.idx + 1 < this.names.length ? this.layout.offsets[this.idx + 1]! : this.layout.totalSize;
      if (next > end) await this.put(new Uint8Array(next - end), end);
      this.idx++;
      this.done = 0;
    }
  }

  /** Writes one whole tensor's data. */
  async writeTensorData(name: string, bytes: Uint8Array): Promise<void> {
    if (this.done !== 0 || bytes.length !== this.layout.sizes[this.names.indexOf(name)]) {
      throw new GgufError(`cannot write tensor "${name}": got ${bytes.length} bytes as a whole tensor, its shape needs ${this.layout.sizes[this.names.indexOf(name)]}`);
    }
    await this.write(name, bytes);
  }

  /** Finishes the file; with `atomic`, fsyncs the temp file and renames it over the target. Throws if data is missing. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.idx < this.names.length) {
      await this.abort();
      throw new GgufError(`cannot finish ${this.path}: tensor "${this.names[this.idx]}" and ${this.names.length - this.idx - 1} after it were not written`);
    }
    this.closed = true;
    if (this.temp) await this.temp.commit();
    else await this.fh.close();
  }

  /** Closes without finishing; removes the temp file in atomic mode. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.temp) await this.temp.discard();
    else await this.fh.close().catch(() => {});
  }
}
