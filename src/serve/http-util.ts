// Small helpers over node:http: JSON replies, bounded body reading, SSE writes
// that respect backpressure, and the OpenAI error reply.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isQllmError, UsageError } from '../errors.ts';
import { apiError, errorBody, isApiError, type ApiError } from './errors.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Maps anything thrown while handling a request to an OpenAI-style error (never a stack trace). */
export function toApiError(e: unknown): ApiError {
  if (isApiError(e)) return e;
  // The model's own UsageError (e.g. prompt longer than the context) is the caller's fault.
  if (e instanceof UsageError) return apiError(400, e.message, /\bcontext\b/.test(e.message) ? 'context_length_exceeded' : 'invalid_request');
  if (isQllmError(e)) return apiError(500, `${e.name}: ${e.message}`, 'model_error');
  return apiError(500, 'internal server error (see the server log)', 'internal_error');
}

export function sendError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) { res.end(); return; }
  const headers: Record<string, string> = {};
  if (e.status === 401) headers['WWW-Authenticate'] = 'Bearer';
  if (e.status === 413) headers.Connection = 'close';
  if (e.status === 429 || e.status === 503) headers['Retry-After'] = '1';
  sendJson(res, e.status, errorBody(e), headers);
}

/** Reads a JSON body of at most `limit` bytes. 413 past the limit, 400 on bad JSON. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = (n: number) => apiError(413, `request body is ${n} bytes or more; the limit is ${limit} bytes`, 'body_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // discard the rest so the socket can close cleanly
    throw tooLarge(declared);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) { req.resume(); throw tooLarge(size); }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw apiError(400, 'request body is empty: send a JSON object', 'invalid_json');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw apiError(400, `request body is not valid JSON (${(e as Error).message})`, 'invalid_json');
  }
}

/** Writes one SSE event; waits for 'drain' when the socket buffer is full, or gives up when the client left. */
export async function writeEvent(res: ServerResponse, data: unknown): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  const ok = res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  if (ok) return;
  await new Promise<void>((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

export const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
