// Byte sources: random access to a GGUF file's bytes without reading it whole.
// fileByteSource reads by position through a Node file handle; bytesByteSource
// wraps bytes already in memory (tests, browser ArrayBuffers).
import { GgufError } from '../errors.ts';
import type { ByteSource } from './types.ts';

function checkRange(what: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new GgufError(`invalid read of ${length} bytes at offset ${offset} in ${what}: offsets must be non-negative integers`);
  }
  if (offset + length > size) {
    throw new GgufError(`read of ${length} bytes at offset ${offset} runs past the end of ${what} (${size} bytes): the file is truncated; download it again`);
  }
}

/** A ByteSource over a file on disk; reads by absolute position, holds only the handle. */
export async function fileByteSource(path: string): Promise<ByteSource> {
  const { open } = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : String((e as Error).message);
    throw new GgufError(`cannot open GGUF file ${path}: ${why}; check the path`);
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    throw new GgufError(`cannot open GGUF file ${path}: not a regular file; pass the path of a .gguf file`);
  }
  const size = st.size;
  let closed = false;
  return {
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (closed) throw new GgufError(`read from ${path} after it was closed: open the file again`);
      checkRange(path, size, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new GgufError(`file ${path} ended at byte ${offset + done} while reading ${length} bytes at offset ${offset}: the file shrank or is truncated; download it again`);
        }
        done += bytesRead;
      }
      return out;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** A ByteSource over bytes in memory. Reads return views (no copy). */
export function bytesByteSource(u8: Uint8Array, label = 'in-memory GGUF'): ByteSource {
  return {
    size: u8.byteLength,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(label, u8.byteLength, offset, length);
      return u8.subarray(offset, offset + length);
    },
    async close(): Promise<void> {},
  };
}

/** A ByteSource over a Blob (browser File); reads slices on demand. */
export function blobByteSource(blob: Blob, label = 'blob'): ByteSource {
  return {
    size: blob.size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(label, blob.size, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
    async close(): Promise<void> {},
  };
}
