// HTTP errors in OpenAI's shape. They are UsageErrors (qllm's error classes are
// fixed) carrying the status and the OpenAI `type`/`code`/`param` fields:
//   { "error": { "message": "...", "type": "invalid_request_error", "param": "messages", "code": "missing_field" } }
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
