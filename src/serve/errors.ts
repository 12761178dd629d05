// HTTP errors in OpenAI's shape. They are UsageErrors (qllm's error classes are
// fixed) carrying the status and the OpenAI `type`/`code`/`param` fields:
//   { "error": { "message": "...", "type": "invalid_request_error", "param": "messages", "code": "missing_field" } }
// Dialects with another error shape (Ollama's { "error": "..." }) map these fields.
import { UsageError } from '../errors.ts';

export interface ApiErrorFields { status: number; type: string; code: string; param: string | null }
export type ApiError = UsageError & ApiErrorFields;

// OpenAI answers every 4xx as `invalid_request_error` (the `code` tells them apart).
const typeFor = (status: number): string => (status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error');

export function apiError(status: number, message: string, code: string, param: string | null = null): ApiError {
  return Object.assign(new UsageError(message), { status, type: typeFor(status), code, param });
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof UsageError && typeof (e as Partial<ApiError>).status === 'number';
}

export function errorBody(e: ApiErrorFields & { message: string }) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

export const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * A short excerpt of any parsed JSON value for an error message. It walks only as
 * far as `max` characters need: JSON.stringify of an array nested 10k deep throws
 * RangeError (a 500), and of a large one costs its whole size.
 */
export function preview(v: unknown, max = 40): string {
  let out = '';
  const walk = (x: unknown, depth: number): void => {
    if (out.length > max) return;
    if (typeof x === 'string') { out += JSON.stringify(x.length > max ? x.slice(0, max) : x); return; }
    if (x === null || typeof x !== 'object') { out += String(x); return; }
    const open = Array.isArray(x) ? '[' : '{';
    const close = Array.isArray(x) ? ']' : '}';
    if (depth >= 8) { out += `${open}…${close}`; return; }
    out += open;
    let first = true;
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length && out.length <= max; i++) {
        if (!first) out += ',';
        first = false;
        walk(x[i], depth + 1);
      }
    } else {
      for (const k in x) {
        if (out.length > max) break;
        if (!first) out += ',';
        first = false;
        out += `${JSON.stringify(k.slice(0, max))}:`;
        walk((x as Record<string, unknown>)[k], depth + 1);
      }
    }
    out += close;
  };
  walk(v, 0);
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

/** 400 for a field of the wrong JSON type; the value is quoted by preview(), never stringified whole. */
export function badType(field: string, want: string, v: unknown): ApiError {
  return apiError(400, `'${field}' must be ${want}, got ${kindOf(v)} ${preview(v)}`.trimEnd(), 'invalid_type', field);
}
