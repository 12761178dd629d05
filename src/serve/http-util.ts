// Small helpers over node:http: JSON replies, bounded body reading, SSE and
// NDJSON writes that respect backpressure, and the error reply.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isQllmError, UsageError } from '../errors.ts';
import { apiError, errorBody, isApiError, type ApiError } from './errors.ts';
import type { RunState } from './generate.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse, state: RunState) => Promise<void> | void;
/** A path's handlers by method (HEAD is served by GET). */
export type Route = Partial<Record<string, Handler>>;

/** One API dialect's routes; the server mounts them side by side. */
export interface Dialect {
  /** Exact paths. */
  routes: Record<string, Route>;
  /** Paths with a parameter (/v1/models/<id>). */
  match?: (path: string) => Route | undefined;
  /** Paths whose errors take this dialect's shape even with no route (an unknown /api/...). */
  owns?: (path: string) => boolean;
  /** The dialect's error body; default OpenAI's. */
  errorBody?: (e: ApiError) => unknown;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Maps anything thrown while handling a request to an API error (never a stack trace). */
export function toApiError(e: unknown): ApiError {
  if (isApiError(e)) return e;
  // The model's own UsageError (e.g. prompt longer than the context) is the caller's fault.
  if (e instanceof UsageError) return apiError(400, e.message, /\bcontext\b/.test(e.message) ? 'context_length_exceeded' : 'invalid_request');
  if (isQllmError(e)) return apiError(500, `${e.name}: ${e.message}`, 'model_error');
  return apiError(500, 'internal server error (see the server log)', 'internal_error');
}

/** The error reply, in the dialect's shape (`body`, default OpenAI's). After the headers it can only end the reply. */
export function sendError(res: ServerResponse, e: ApiError, body: (e: ApiError) => unknown = errorBody): void {
  if (res.headersSent) { res.end(); return; }
  const headers: Record<string, string> = {};
  if (e.status === 401) headers['WWW-Authenticate'] = 'Bearer';
  if (e.status === 413) headers.Connection = 'close';
  if (e.status === 429 || e.status === 503) headers['Retry-After'] = '1';
  sendJson(res, e.status, body(e), headers);
}

/**
 * Reads a JSON body of at most `limit` bytes. 415 unless the Content-Type is
 * application/json (a browser page can send text/plain or a form cross-origin
 * without a CORS preflight; it cannot send application/json that way), 413 past
 * the limit, 400 on bad JSON.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    throw apiError(415, `Content-Type is ${type ? `'${type.slice(0, 60)}'` : 'missing'}; send the JSON body with Content-Type: application/json (curl: --json '{...}')`, 'unsupported_media_type');
  }
  const tooLarge = (n: number) => apiError(413, `request body is ${n} bytes or more; the limit is ${limit} bytes`, 'body_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(declared);
  // Listeners, not for-await: leaving a for-await early destroys the request, and
  // with it the socket the error reply must go out on.
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) { got.push(chunk); return; }
      req.off('data', onData);
      req.resume(); // discard the rest
      reject(tooLarge(size));
    };
    req.on('data', onData);
    req.once('end', () => resolve(got));
    req.once('error', reject);
    req.once('close', () => { if (!req.complete) reject(apiError(400, 'the request body ended early', 'invalid_body')); });
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw apiError(400, 'request body is empty: send a JSON object', 'invalid_json');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw apiError(400, `request body is not valid JSON (${(e as Error).message})`, 'invalid_json');
  }
}

/** Writes `text`; waits for 'drain' when the socket buffer is full, or gives up when the client left. */
async function write(res: ServerResponse, text: string): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  if (res.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** One SSE event (OpenAI streaming). */
export const writeEvent = (res: ServerResponse, data: unknown) => write(res, `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

/** One NDJSON line (Ollama streaming). */
export const writeLine = (res: ServerResponse, data: unknown) => write(res, `${JSON.stringify(data)}\n`);

export const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** qllm's version (package.json), for /api/version and /props' build_info. */
export const QLLM_VERSION: string = (() => {
  try {
    return String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  } catch {
    return 'unknown';
  }
})();
