// A copy of a (small) GGUF with some metadata replaced, added or removed, for
// tests that need one bad hyper-parameter in an otherwise real model.
import { writeFile } from 'node:fs/promises';
import { openGguf } from '../../src/gguf/reader.ts';
import type { GgufKV, TensorInfo } from '../../src/gguf/types.ts';
import { writeGgufToBytes } from '../../src/gguf/writer.ts';
import type { GgmlType, TypeInfo } from '../../src/quant/table.ts';

type TensorEdit = (t: TensorInfo, data: Uint8Array) => { type: GgmlType | TypeInfo; data: Uint8Array } | undefined;

/**
 * changes: key → its new entry (kv.f32(...), …), or null to drop the key. Keys
 * not in the file are appended. retype: a tensor's new type and bytes (same dims), or undefined to keep it.
 */
export async function rewriteMeta(src: string, out: string, changes: Record<string, GgufKV | null>, retype?: TensorEdit): Promise<string> {
  const f = await openGguf(src);
  try {
    const kvs: GgufKV[] = [];
    for (const [k, e] of f.kv) {
      if (!(k in changes)) kvs.push(e);
      else if (changes[k]) kvs.push(changes[k]);
    }
    for (const [k, e] of Object.entries(changes)) if (e && !f.kv.has(k)) kvs.push(e);
    const tensors = [];
    for (const t of f.tensors) {
      const data = await f.readTensor(t);
      tensors.push({ name: t.name, dims: t.dims, type: t.type, data, ...retype?.(t, data) });
    }
    await writeFile(out, writeGgufToBytes({ kv: kvs, tensors, alignment: f.alignment }));
    return out;
  } finally {
    await f.close();
  }
}
