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

/**
 * A string from a file (architecture, tokenizer model, general.name, tensor and
 * key names) made safe for one terminal line: control characters (C0, DEL, C1),
 * line and paragraph separators and bidi overrides become \xNN or \u{NNNN}, so
 * an ESC sequence or a CR/LF in a file cannot redraw the terminal or split an
 * error message. Capped at `max` characters after escaping, an escape never cut.
 */
export function printable(s: string, max = 80): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const bad = c < 0x20 || (c >= 0x7f && c < 0xa0) || c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0xfeff;
    const piece = !bad ? ch : c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u{${c.toString(16)}}`;
    if (out.length + piece.length > max) return `${out}…`;
    out += piece;
  }
  return out;
}
