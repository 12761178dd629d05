// GGUF: reading (lazy, bounded memory) and writing (streaming) llama.cpp's file format.
export * from './types.ts';
export { openGguf, openGgufBytes } from './reader.ts';
export { fileByteSource, bytesByteSource, blobByteSource } from './source.ts';
export { GgufWriter, kv, layoutGguf, writeGgufToBytes, type Layout, type TensorSpec, type WriterOptions } from './writer.ts';
