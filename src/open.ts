// Opening a model path the way a user types it: a missing file, a directory or a
// non-GGUF file each get their own one-line error before the parser runs.
import { stat } from 'node:fs/promises';
import { UsageError } from './errors.ts';
import { openGguf } from './gguf/reader.ts';
import type { GgufFile } from './gguf/types.ts';

export async function openModelFile(path: string | undefined): Promise<GgufFile> {
  if (!path) throw new UsageError('no model given: pass the path of a .gguf file, e.g. qllm run models/tinyllama-q4_k_m.gguf');
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch {
    throw new UsageError(`model file ${path} does not exist: check the path, or download one with 'qllm pull hf:owner/repo/file.gguf'`);
  }
  if (st.isDirectory()) throw new UsageError(`${path} is a directory: pass the .gguf file inside it`);
  return openGguf(path);
}
