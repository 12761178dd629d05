// The three error classes qllm throws on purpose. Each message is one line that
// names the bad value and the fix; the CLI prints `qllm: <message>` and exits 1.

/** A GGUF file is malformed, truncated or uses something qllm does not support. */
export class GgufError extends Error {
  override name = 'GgufError';
}

/** The WebGPU adapter/device failed: no adapter, out of memory, device lost, shader error. */
export class GpuError extends Error {
  override name = 'GpuError';
}

/** The caller asked for something invalid: bad flag, missing file, prompt longer than the context. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type QllmError = GgufError | GpuError | UsageError;

export function isQllmError(e: unknown): e is QllmError {
  return e instanceof GgufError || e instanceof GpuError || e instanceof UsageError;
}
