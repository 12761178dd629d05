// The model that ships inside the package (assets/, see its README), so that a
// first `qllm run -p "Once upon a time"` needs no download: Karpathy's
// stories260K from llama2.c, Q8_0. Same relative path from src/ and dist/.
import { fileURLToPath } from 'node:url';

/** Absolute path of the bundled model. */
export function bundledModelPath(): string {
  return fileURLToPath(new URL('../assets/stories260K-q8_0.gguf', import.meta.url));
}

/** The one line a command prints when it falls back to the bundled model. */
export const BUNDLED_NOTE =
  "no model given: using the bundled stories260K (a 260K-parameter model that writes children's stories); pass a .gguf path or hf:owner/repo/file.gguf for a real one";
