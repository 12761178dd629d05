// GGUF reader: parses the header (metadata + tensor infos) lazily through a
// buffered cursor over a ByteSource, so a 4 GB file is inspected with a heap
// bounded by the chunk size plus the metadata itself. Tensor data stays on disk.
//
// Layout (v2/v3, little-endian):
//   "GGUF" u32 version | u64 n_tensors | u64 n_kv
//   n_kv × { string key, u32 type, value }            (string = u64 len + bytes)
//   n_tensors × { string name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset }
//   padding to general.alignment | tensor data (offsets relative to its start)
import { GgufError, printable } from '../errors.ts';
import { typeInfo } from '../quant/table.ts';
import { fileByteSource, bytesByteSource } from './source.ts';
import {
  type ByteSource, type GgufArray, type GgufArrayValue, type GgufFile, type GgufKV, type GgufValue,
  GgufValueType, type TensorInfo,
} from './types.ts';

export { fileByteSource, bytesByteSource } from './source.ts';

const CHUNK = 1 << 20;
const MAX_DIMS = 4;
const MAX_ARRAY_DEPTH = 8;
const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;

/** Bytes per element of fixed-size metadata types (string/array: variable). */
const SCALAR_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};
/** Smallest encoding of one value of each type: used to bound untrusted counts. */
function minSize(t: GgufValueType): number {
  if (t === GgufValueType.STRING) return 8;
  if (t === GgufValueType.ARRAY) return 12;
  return SCALAR_SIZE[t] ?? 1;
}

/** A name from the file, quoted and escaped so an error message stays one short line. */
function quote(s: string): string {
  return `"${printable(s)}"`;
}

// ignoreBOM: a token may be U+FEFF itself (Phi-3's 30143), which the default decoder would strip.
const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** A forward cursor with a refillable window [bufStart, bufStart+buf.length). */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(this.buf.buffer);
  private bufStart = 0;
  constructor(private readonly src: ByteSource, readonly label: string) {}

  get size(): number { return this.src.size; }
  get remaining(): number { return this.src.size - this.pos; }

  truncated(what: string, need: number): GgufError {
    return new GgufError(`file truncated at byte ${this.src.size} while reading ${what} (needs ${need} bytes at offset ${this.pos}) in ${this.label}: the download is incomplete; download it again`);
  }

  /** Makes [pos, pos+n) available in the window; returns its index in buf. */
  async need(n: number, what: string): Promise<number> {
    if (n > this.remaining) throw this.truncated(what, n);
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    const len = Math.min(Math.max(CHUNK, n), this.remaining);
    const bytes = await this.src.read(this.pos, len);
    this.buf = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  async u8(what: string): Promise<number> { const i = await this.need(1, what); this.pos += 1; return this.buf[i]!; }
  async u32(what: string): Promise<number> { const i = await this.need(4, what); this.pos += 4; return this.dv.getUint32(i, true); }
  /** u64 as a number; values past 2^53 come back as a large inexact number (callers bound-check). */
  async u64n(what: string): Promise<number> {
    const i = await this.need(8, what);
    this.pos += 8;
    return this.dv.getUint32(i, true) + this.dv.getUint32(i + 4, true) * 2 ** 32;
  }

  /** A GGUF string: u64 length + UTF-8 bytes (invalid sequences become U+FFFD). */
  async str(what: string): Promise<string> {
    const at = this.pos;
    const len = await this.u64n(`${what} length`);
    if (len > this.remaining) {
      throw new GgufError(`string length ${len} at byte ${at} (${what}) is larger than the ${this.remaining} bytes left in ${this.label}: the file is corrupt or truncated; download it again`);
    }
    const i = await this.need(len, what);
    this.pos += len;
    return decode(this.buf, i, len);
  }

  /** A string wholly inside the current window, without awaiting; undefined means "use str()". */
  strSync(): string | undefined {
    const rel = this.pos - this.bufStart;
    if (rel < 0 || rel + 8 > this.buf.length) return undefined;
    if (this.dv.getUint32(rel + 4, true) !== 0) return undefined;
    const len = this.dv.getUint32(rel, true);
    if (rel + 8 + len > this.buf.length) return undefined;
    this.pos += 8 + len;
    return decode(this.buf, rel + 8, len);
  }

  /** Scalar value of a fixed-size type. */
  async scalar(t: GgufValueType, what: string): Promise<GgufValue> {
    const size = SCALAR_SIZE[t]!;
    const i = await this.need(size, what);
    this.pos += size;
    const dv = this.dv;
    switch (t) {
      case GgufValueType.UINT8: return dv.getUint8(i);
      case GgufValueType.INT8: return dv.getInt8(i);
      case GgufValueType.UINT16: return dv.getUint16(i, true);
      case GgufValueType.INT16: return dv.getInt16(i, true);
      case GgufValueType.UINT32: return dv.getUint32(i, true);
      case GgufValueType.INT32: return dv.getInt32(i, true);
      case GgufValueType.FLOAT32: return dv.getFloat32(i, true);
      case GgufValueType.BOOL: return dv.getUint8(i) !== 0;
      case GgufValueType.UINT64: return dv.getBigUint64(i, true);
      case GgufValueType.INT64: return dv.getBigInt64(i, true);
      case GgufValueType.FLOAT64: return dv.getFloat64(i, true);
      default: throw new GgufError(`internal: ${t} is not a scalar type`);
    }
  }

  /** `n` fixed-size elements copied out of the window (aligned, owned). */
  async raw(n: number, what: string): Promise<ArrayBuffer> {
    const i = await this.need(n, what);
    this.pos += n;
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(i, i + n));
    return out.buffer;
  }
}

function decode(buf: Uint8Array, i: number, len: number): string {
  // ASCII fast path: most tokens are short and ASCII; TextDecoder has per-call overhead.
  if (len <= 64) {
    let ascii = true;
    for (let k = i; k < i + len; k++) if (buf[k]! >= 0x80) { ascii = false; break; }
    if (ascii) return String.fromCharCode.apply(null, buf.subarray(i, i + len) as unknown as number[]);
  }
  return utf8.decode(buf.subarray(i, i + len));
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function typedFrom(t: GgufValueType, buf: ArrayBuffer): GgufArrayValue {
  if (!LE) throw new GgufError('GGUF reading on a big-endian host is not supported: run qllm on a little-endian machine');
  switch (t) {
    case GgufValueType.UINT8: return new Uint8Array(buf);
    case GgufValueType.INT8: return new Int8Array(buf);
    case GgufValueType.UINT16: return new Uint16Array(buf);
    case GgufValueType.INT16: return new Int16Array(buf);
    case GgufValueType.UINT32: return new Uint32Array(buf);
    case GgufValueType.INT32: return new Int32Array(buf);
    case GgufValueType.FLOAT32: return new Float32Array(buf);
    case GgufValueType.UINT64: return new BigUint64Array(buf);
    case GgufValueType.INT64: return new BigInt64Array(buf);
    case GgufValueType.FLOAT64: return new Float64Array(buf);
    case GgufValueType.BOOL: return Array.from(new Uint8Array(buf), (b) => b !== 0);
    default: throw new GgufError(`internal: ${t} is not a fixed-size type`);
  }
}

function isValueType(t: number): t is GgufValueType {
  return Number.isInteger(t) && t >= 0 && t <= GgufValueType.FLOAT64;
}

async function readValue(c: Cursor, t: GgufValueType, what: string, depth: number): Promise<GgufValue> {
  if (t === GgufValueType.STRING) return c.str(what);
  if (t !== GgufValueType.ARRAY) return c.scalar(t, what);
  if (depth >= MAX_ARRAY_DEPTH) {
    throw new GgufError(`${what} nests arrays deeper than ${MAX_ARRAY_DEPTH} levels at byte ${c.pos} in ${c.label}: the file is corrupt; re-convert it`);
  }
  const at = c.pos;
  const itemType = await c.u32(`${what} array item type`);
  if (!isValueType(itemType)) {
    throw new GgufError(`unknown metadata value type ${itemType} for the items of ${what} at byte ${at}: the file is corrupt or from a newer GGUF version; re-convert it with a current llama.cpp`);
  }
  const n = await c.u64n(`${what} array length`);
  if (n * minSize(itemType) > c.remaining) {
    throw new GgufError(`array length ${n} at byte ${at + 4} (${what}) is larger than the ${c.remaining} bytes left in ${c.label}: the file is corrupt or truncated; download it again`);
  }
  let values: GgufArrayValue;
  if (itemType === GgufValueType.STRING) {
    const out: string[] = new Array(n);
    // Sync fast path per string (150k merges): await only when the window must be refilled.
    for (let k = 0; k < n; k++) out[k] = c.strSync() ?? (await c.str(`${what}[${k}]`));
    values = out;
  } else if (itemType === GgufValueType.ARRAY) {
    const out: GgufArray[] = new Array(n);
    for (let k = 0; k < n; k++) out[k] = (await readValue(c, GgufValueType.ARRAY, `${what}[${k}]`, depth + 1)) as GgufArray;
    values = out;
  } else {
    values = typedFrom(itemType, await c.raw(n * SCALAR_SIZE[itemType]!, what));
  }
  return { itemType, values } satisfies GgufArray;
}

function valueAsInt(v: GgufValue): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n) return Number(v);
  return undefined;
}

/** Opens and parses a GGUF file (path or ByteSource). Throws GgufError on any malformed input. */
export async function openGguf(pathOrSource: string | ByteSource, label?: string): Promise<GgufFile> {
  const owned = typeof pathOrSource === 'string';
  const src = owned ? await fileByteSource(pathOrSource) : pathOrSource;
  const name = label ?? (owned ? pathOrSource : 'in-memory GGUF');
  const c = new Cursor(src, `GGUF file ${name}`);
  try {
    return await parse(c, src, name);
  } catch (e) {
    if (owned) await src.close().catch(() => {});
    // Callers (the CLI) show one line that says which file format went wrong.
    if (e instanceof GgufError) {
      const one = e.message.replace(/[\r\n\u0085\u2028\u2029]+/g, ' ');
      throw one === e.message && /GGUF/.test(one) ? e : new GgufError(/GGUF/.test(one) ? one : `bad GGUF file ${name}: ${one}`);
    }
    const msg = e instanceof Error ? e.message : String(e);
    throw new GgufError(`cannot parse GGUF file ${name} at byte ${c.pos}: ${msg.split('\n')[0]}; the file is corrupt; download or re-convert it`);
  }
}

async function parse(c: Cursor, src: ByteSource, name: string): Promise<GgufFile> {
  const where = `GGUF file ${name}`;
  if (src.size < 4) throw new GgufError(`not a GGUF file (only ${src.size} bytes): ${name} is empty or truncated; download it again`);
  const magic = await c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const b = [magic & 255, (magic >>> 8) & 255, (magic >>> 16) & 255, magic >>> 24];
    const shown = b.map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`)).join('');
    throw new GgufError(`not a GGUF file (magic "${shown}", expected "GGUF"): ${name}; pass a .gguf model file (convert others with llama.cpp's convert_hf_to_gguf.py)`);
  }
  const version = await c.u32('version');
  if (version === 1) throw new GgufError(`unsupported version 1 of GGUF in ${name}: the file predates GGUF v2; re-convert it with a current llama.cpp`);
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 255) << 24 | ((version >>> 8) & 255) << 16 | ((version >>> 16) & 255) << 8 | (version >>> 24)) >>> 0;
    const why = swapped === 2 || swapped === 3 ? 'the file is big-endian; use a little-endian GGUF' : 'the file is corrupt or from a newer GGUF; re-convert it with the llama.cpp matching qllm (v2/v3)';
    throw new GgufError(`unsupported GGUF version ${version} at byte 4 in ${name}: ${why}`);
  }
  const nTensors = await c.u64n('tensor count');
  const nKv = await c.u64n('metadata count');
  // Every kv needs >= 13 bytes and every tensor info >= 32: bound the counts before looping.
  if (nKv * 13 + nTensors * 32 > c.remaining) {
    throw new GgufError(`metadata count ${nKv} and tensor count ${nTensors} (at byte 8) need more than the ${c.remaining} bytes left in ${where}: the file is corrupt or truncated; download it again`);
  }

  const kv = new Map<string, GgufKV>();
  for (let k = 0; k < nKv; k++) {
    const at = c.pos;
    const key = await c.str(`metadata key #${k}`);
    if (kv.has(key)) throw new GgufError(`duplicate metadata key ${quote(key)} at byte ${at} in ${where}: the file is corrupt; re-convert it`);
    const tAt = c.pos;
    const type = await c.u32(`type of metadata key ${quote(key)}`);
    if (!isValueType(type)) {
      throw new GgufError(`unknown metadata value type ${type} for key ${quote(key)} at byte ${tAt} in ${where}: the file is corrupt or from a newer GGUF version; re-convert it with a current llama.cpp`);
    }
    const value = await readValue(c, type, `metadata key ${quote(key)}`, 0);
    kv.set(key, Object.freeze({ key, type, value }));
  }

  let alignment = DEFAULT_ALIGNMENT;
  const al = kv.get('general.alignment');
  if (al) {
    const v = valueAsInt(al.value);
    if (v === undefined || v <= 0 || (v & (v - 1)) !== 0 || v > 2 ** 30) {
      throw new GgufError(`general.alignment = ${String(al.value)} in ${where} is not a non-zero power of two: the file is corrupt; re-convert it`);
    }
    alignment = v;
  }

  interface Raw { name: string; dims: number[]; typeId: number; rel: number; at: number }
  const raws: Raw[] = [];
  const names = new Set<string>();
  for (let k = 0; k < nTensors; k++) {
    const at = c.pos;
    const tname = await c.str(`name of tensor #${k}`);
    if (names.has(tname)) throw new GgufError(`duplicate tensor name ${quote(tname)} at byte ${at} in ${where}: the file is corrupt; re-convert it`);
    names.add(tname);
    const nd = await c.u32(`dimension count of tensor ${quote(tname)}`);
    if (nd < 1 || nd > MAX_DIMS) {
      throw new GgufError(`tensor ${quote(tname)} has ${nd} dimensions (at byte ${c.pos - 4}) in ${where}; ggml allows 1 to ${MAX_DIMS}: the file is corrupt; re-convert it`);
    }
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) dims.push(await c.u64n(`dims of tensor ${quote(tname)}`));
    const typeId = await c.u32(`type of tensor ${quote(tname)}`);
    const rel = await c.u64n(`data offset of tensor ${quote(tname)}`);
    raws.push({ name: tname, dims, typeId, rel, at });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (nTensors > 0 && dataOffset > src.size) {
    throw new GgufError(`file truncated at byte ${src.size} while reading the padding before tensor data (data starts at ${dataOffset}) in ${where}: the download is incomplete; download it again`);
  }

  const tensors: TensorInfo[] = raws.map((r) => {
    const type = typeInfo(r.typeId);
    if (!type) throw new GgufError(`unknown ggml type id ${r.typeId} for tensor ${quote(r.name)} (info at byte ${r.at}) in ${where}: the file is corrupt or from a newer ggml; re-convert it with a current llama.cpp`);
    let n = 1;
    for (const d of r.dims) {
      if (d === 0) throw new GgufError(`tensor ${quote(r.name)} has a zero dimension [${r.dims.join(', ')}] in ${where}: the file is corrupt; re-convert it`);
      n *= d;
      if (!Number.isSafeInteger(n)) throw new GgufError(`tensor ${quote(r.name)} dimensions [${r.dims.join(', ')}] overflow 2^53 elements in ${where}: the file is corrupt; re-convert it`);
    }
    if (r.dims[0]! % type.blockElems !== 0) {
      throw new GgufError(`tensor ${quote(r.name)} row length ${r.dims[0]} is not a multiple of the ${type.name} block size ${type.blockElems} in ${where}: the file is corrupt; re-convert it`);
    }
    const nBytes = (n / type.blockElems) * type.blockBytes;
    if (r.rel % alignment !== 0) {
      throw new GgufError(`tensor ${quote(r.name)} data offset ${r.rel} is not a multiple of the alignment ${alignment} in ${where}: the file is corrupt; re-convert it`);
    }
    const offset = dataOffset + r.rel;
    if (!Number.isSafeInteger(offset + nBytes) || offset + nBytes > src.size) {
      throw new GgufError(`tensor ${quote(r.name)} data [${offset}, ${offset + nBytes}) runs past the end of ${where} (${src.size} bytes): the file is truncated; download it again`);
    }
    return Object.freeze({ name: r.name, dims: Object.freeze(r.dims), type, nElements: n, nBytes, offset });
  });
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let closed = false;

  return Object.freeze({
    path: name,
    version,
    fileSize: src.size,
    alignment,
    dataOffset,
    kv,
    tensors: Object.freeze(tensors),
    tensor: (n: string) => byName.get(n),
    async readTensor(t: TensorInfo, start = 0, length?: number): Promise<Uint8Array> {
      if (closed) throw new GgufError(`read of tensor ${quote(t.name)} after ${where} was closed: open the file again`);
      const len = length ?? t.nBytes - start;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || start < 0 || len < 0 || start + len > t.nBytes) {
        throw new GgufError(`read of bytes [${start}, ${start + len}) is outside tensor ${quote(t.name)} (${t.nBytes} bytes) in ${where}: this is a qllm bug; please report it`);
      }
      return src.read(t.offset + start, len);
    },
    async close(): Promise<void> {
      closed = true;
      await src.close();
    },
  });
}

/** Parses GGUF bytes already in memory. */
export function openGgufBytes(u8: Uint8Array, label = 'in-memory GGUF'): Promise<GgufFile> {
  return openGguf(bytesByteSource(u8, label), label);
}
