// The in-memory shape of a GGUF file's header. The reader (reader.ts) fills it;
// tensor data stays on disk and is read by byte range through GgufFile.
import type { TypeInfo } from '../quant/table.ts';

/** GGUF metadata value type ids (gguf.h). */
export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/**
 * A metadata value. Integers up to 32 bits and floats are `number`; 64-bit
 * integers are `bigint`; arrays of numeric types are typed arrays (compact for
 * 32k-entry token score/type arrays); arrays of strings are string[]; nested
 * arrays are GgufArray[].
 */
export type GgufScalar = number | bigint | boolean | string;
export type GgufArrayValue =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | boolean[] | string[] | GgufArray[];
export interface GgufArray { readonly itemType: GgufValueType; readonly values: GgufArrayValue }
export type GgufValue = GgufScalar | GgufArray;

export interface GgufKV { readonly key: string; readonly type: GgufValueType; readonly value: GgufValue }

export interface TensorInfo {
  readonly name: string;
  /** ggml order: dims[0] is the row length (contiguous), dims[1] the row count. */
  readonly dims: readonly number[];
  readonly type: TypeInfo;
  /** Total elements. */
  readonly nElements: number;
  /** Bytes of data. */
  readonly nBytes: number;
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
}

/** Random-access bytes: a file handle in Node, a Blob/ArrayBuffer elsewhere. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at absolute `offset`; throws GgufError past the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A parsed GGUF header plus lazy access to tensor data. */
export interface GgufFile {
  /** File path, or a label for non-file sources. */
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  /** general.alignment, default 32. */
  readonly alignment: number;
  /** Absolute offset where the tensor data section starts. */
  readonly dataOffset: number;
  /** Metadata in file order. */
  readonly kv: ReadonlyMap<string, GgufKV>;
  /** Tensor infos in file order; offsets are absolute. */
  readonly tensors: readonly TensorInfo[];
  tensor(name: string): TensorInfo | undefined;
  /** Bytes [start, start+length) of a tensor's data (defaults: the whole tensor). */
  readTensor(t: TensorInfo, start?: number, length?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}
