// The server's shared embedding core: input texts checked before the queue,
// then model.embed() with the model to itself (embeddings overwrite the KV
// cache, so they wait their turn like a generation). The dialects (OpenAI
// /v1/embeddings, Ollama /api/embed and /api/embeddings) only translate.
import type { ServerResponse } from 'node:http';
import type { Embedding } from '../api.ts';
import { isQllmError } from '../errors.ts';
import { apiError, badType } from './errors.ts';
import type { ServeContext } from './generate.ts';

/** Most texts one request may embed (llama-server has no fixed limit; this keeps one request from holding the model for long). */
export const MAX_INPUTS = 256;

/** A string or an array of strings, as `field`; token-id arrays are refused by name. */
export function parseInputs(v: unknown, field: string): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) throw badType(field, 'a string or a non-empty array of strings', v);
  if (list.length > MAX_INPUTS) throw apiError(400, `'${field}' has ${list.length} texts: at most ${MAX_INPUTS} per request`, 'invalid_value', field);
  for (const [i, s] of list.entries()) {
    if (typeof s === 'number' || Array.isArray(s)) throw apiError(400, `'${field}[${i}]' is a token id or token array: qllm embeds text, send strings`, 'invalid_value', field);
    if (typeof s !== 'string') throw badType(`${field}[${i}]`, 'a string', s);
  }
  return list as string[];
}

/** Embeds `texts` when the model is free; a client that leaves frees its place in the queue. */
export async function runEmbed(ctx: ServeContext, texts: string[], res: ServerResponse): Promise<{ data: Embedding[]; ms: number }> {
  const ac = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) ac.abort();
  };
  res.on('close', onClose);
  const t0 = performance.now();
  let release: (() => void) | undefined;
  try {
    release = await ctx.queue.acquire(ac.signal);
    const data = await ctx.model.embed(texts);
    return { data, ms: performance.now() - t0 };
  } catch (e) {
    // Input the model refuses (too long for the context, a reranker): the client's mistake.
    if (isQllmError(e) && e.name === 'UsageError') throw apiError(400, e.message, 'invalid_value', 'input');
    throw e;
  } finally {
    res.off('close', onClose);
    release?.();
  }
}

/** float32 little-endian bytes, base64: OpenAI's `encoding_format: "base64"`. */
export function base64Floats(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}
