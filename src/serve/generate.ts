// POST /v1/chat/completions and /v1/completions once the body is parsed: wait
// for the model in the FIFO, run the generation, reply as one JSON object or as
// SSE chunks. A client that disconnects aborts its generation at once.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Generation, GenerationStats, Model, Token } from '../api.ts';
import { apiError } from './errors.ts';
import { sendError, sendJson, toApiError, writeEvent } from './http-util.ts';
import {
  chatChunk, chatCompletion, completionChunk, finishReason, textCompletion, timingsOf, usageChunk, usageOf,
  type Meta, type ParsedRequest, type Timings,
} from './openai.ts';
import type { FifoQueue } from './queue.ts';

export interface RunState {
  /** Tokens generated, for the request log. */
  tokens: number;
  clientClosed: boolean;
}

export interface GenContext {
  model: Model;
  modelId: string;
  queue: FifoQueue;
  /** Called with the running generation's controller and a promise that settles when it ends (for drain). */
  track: (ac: AbortController, done: Promise<void>) => void;
  onStats: (s: GenerationStats, t: Timings) => void;
  log: (line: string) => void;
}

function report(ctx: GenContext, e: unknown) {
  const err = toApiError(e);
  if (err.code === 'internal_error') ctx.log(`internal error during generation: ${(e as Error)?.stack ?? e}`);
  return err;
}

export async function runCompletion(ctx: GenContext, kind: 'chat' | 'completion', p: ParsedRequest, res: ServerResponse, state: RunState): Promise<void> {
  const ac = new AbortController();
  const onClose = () => { if (!res.writableFinished) { state.clientClosed = true; ac.abort(); } };
  res.on('close', onClose);
  let release: (() => void) | undefined;
  let finished!: () => void;
  const done = new Promise<void>((r) => { finished = r; });
  try {
    release = await ctx.queue.acquire(ac.signal);
    ctx.track(ac, done);
    await generateInto(ctx, kind, p, res, ac, state);
  } catch (e) {
    if (!state.clientClosed) sendError(res, ac.signal.aborted ? shuttingDown() : report(ctx, e));
  } finally {
    if (!res.writableEnded && !state.clientClosed) {
      if (res.headersSent) res.end();
      else sendError(res, shuttingDown());
    }
    res.off('close', onClose);
    release?.();
    finished();
  }
}

async function generateInto(ctx: GenContext, kind: 'chat' | 'completion', p: ParsedRequest, res: ServerResponse, ac: AbortController, state: RunState): Promise<void> {
  const t0 = performance.now();
  const meta: Meta = { id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000), model: ctx.modelId };
  const opts = { ...p.opts, signal: ac.signal };
  const gen: Generation = kind === 'chat' ? ctx.model.chat(p.messages!, opts) : ctx.model.generate(p.prompt!, opts);
  // Iteration reports failures; keep these promises from becoming unhandled rejections.
  gen.stats.catch(() => {});
  gen.promptIds.catch(() => {});
  const it = gen[Symbol.asyncIterator]();
  try {
    // Wait for the first token before answering, so that a prompt the model
    // refuses (too long, …) still gets a proper JSON error status.
    let step = await it.next();
    let text = '';
    const take = (t: Token) => { state.tokens++; text += t.text; return t.text; };
    if (!p.stream) {
      while (!step.done) { take(step.value); step = await it.next(); }
      const stats = await gen.stats;
      const timings = timingsOf(stats, performance.now() - t0, ctx.model.memory());
      ctx.onStats(stats, timings);
      const fin = finishReason(stats.stopReason);
      sendJson(res, 200, kind === 'chat'
        ? chatCompletion(meta, text, fin, usageOf(stats), timings)
        : textCompletion(meta, text, fin, usageOf(stats), timings));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const chunk = (s: string) => (kind === 'chat' ? chatChunk(meta, { content: s }, null, p.includeUsage) : completionChunk(meta, s, null, p.includeUsage));
    if (kind === 'chat') await writeEvent(res, chatChunk(meta, { role: 'assistant', content: '' }, null, p.includeUsage));
    try {
      while (!step.done) {
        const s = take(step.value);
        // A token can be part of a UTF-8 character and carry no text yet.
        if (s !== '') await writeEvent(res, chunk(s));
        if (state.clientClosed) return;
        step = await it.next();
      }
      if (state.clientClosed) return;
      const stats = await gen.stats;
      const timings = timingsOf(stats, performance.now() - t0, ctx.model.memory());
      ctx.onStats(stats, timings);
      const fin = finishReason(stats.stopReason);
      await writeEvent(res, kind === 'chat' ? chatChunk(meta, {}, fin, p.includeUsage) : completionChunk(meta, '', fin, p.includeUsage));
      if (p.includeUsage) await writeEvent(res, usageChunk(meta, kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', usageOf(stats), timings));
      await writeEvent(res, '[DONE]');
      res.end();
    } catch (e) {
      if (state.clientClosed) return;
      // Headers are out: report the failure in the stream, as OpenAI does.
      const err = report(ctx, e);
      await writeEvent(res, { error: { message: err.message, type: err.type, param: err.param, code: err.code } });
      res.end();
    }
  } finally {
    await it.return?.();
  }
}

export const shuttingDown = () => apiError(503, 'server is shutting down; retry against another instance', 'shutting_down');
