// `qllm serve`: an OpenAI-compatible HTTP server over one loaded Model, on
// node:http. Routes:
//   GET  /                      chat page (static)
//   GET  /health                {status:"ok"} (never needs the API key)
//   GET  /v1/models[/<id>]      the one model
//   POST /v1/chat/completions   model.chat   (stream or not)
//   POST /v1/completions        model.generate
//   GET  /v1/qllm/stats         GPU memory by category, f16 figure, RSS, queue, last timings
// Generations run one at a time from a bounded FIFO; a full queue answers 429.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { GenerationStats, Model } from '../api.ts';
import { UsageError } from '../errors.ts';
import { apiError } from './errors.ts';
import { runCompletion, shuttingDown, type RunState } from './generate.ts';
import { isLoopback, readJson, sendError, sendJson, toApiError } from './http-util.ts';
import { parseChatRequest, parseCompletionRequest, type RequestLimits, type Timings } from './openai.ts';
import { FifoQueue } from './queue.ts';

export interface ServerOptions {
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Required when `host` is not a loopback address. */
  apiKey?: string;
  /** Requests that may wait while one generates. Default 8. */
  queue?: number;
  /** Origin allowed by CORS (or '*'); no CORS headers when unset. */
  cors?: string;
  /** Context the model was loaded with; default model.info.contextLength. */
  contextLength?: number;
  /** Name clients pass as `model`; default model.info.name. */
  modelId?: string;
  /** max_tokens when a request gives none; default the context length. */
  defaultMaxTokens?: number;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** On close(), how long the generation in flight may go on before it is aborted. Default 10 s. */
  drainMs?: number;
  /** One line per request and warnings; default stderr. */
  log?: (line: string) => void;
}

export interface QllmServer {
  server: http.Server;
  listen(): Promise<{ port: number; host: string; url: string }>;
  close(): Promise<void>;
}

const PAGE = readFileSync(new URL('./page.html', import.meta.url), 'utf8');

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, state: RunState) => Promise<void> | void;

export function createServer(model: Model, opts: ServerOptions = {}): QllmServer {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!isLoopback(host) && !opts.apiKey) {
    throw new UsageError(`--host ${host} exposes the server beyond this machine: also pass --api-key KEY (or use --host 127.0.0.1)`);
  }
  if (opts.apiKey !== undefined && opts.apiKey.length < 1) throw new UsageError('--api-key is empty: pass a non-empty key');
  const queue = new FifoQueue(opts.queue ?? 8);
  const limits: RequestLimits = {
    contextLength: Math.min(opts.contextLength ?? model.info.contextLength, model.info.contextLength),
    modelId: opts.modelId ?? model.info.name,
    defaultMaxTokens: opts.defaultMaxTokens,
  };
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const started = Math.floor(Date.now() / 1000);
  const keyHash = opts.apiKey ? createHash('sha256').update(opts.apiKey).digest() : undefined;
  let draining = false;
  let active: { ac: AbortController; done: Promise<void> } | undefined;
  let last: { stats: GenerationStats; timings: Timings } | undefined;
  let served = 0;

  const genCtx = {
    model, modelId: limits.modelId, queue,
    track: (ac: AbortController, done: Promise<void>) => {
      active = { ac, done };
      done.then(() => { if (active?.ac === ac) active = undefined; });
    },
    onStats: (stats: GenerationStats, timings: Timings) => { last = { stats, timings }; served++; },
    log,
  };

  const completion = (kind: 'chat' | 'completion'): Handler => async (req, res, state) => {
    const body = await readJson(req, maxBody);
    const p = kind === 'chat' ? parseChatRequest(body, limits) : parseCompletionRequest(body, limits);
    if (draining) throw shuttingDown();
    await runCompletion(genCtx, kind, p, res, state);
  };
  const modelObject = () => ({ id: limits.modelId, object: 'model', created: started, owned_by: 'qllm' });

  const routes: Record<string, Partial<Record<string, Handler>>> = {
    '/': { GET: (_q, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      res.end(PAGE);
    } },
    '/health': { GET: (_q, res) => sendJson(res, draining ? 503 : 200, { status: draining ? 'shutting_down' : 'ok' }) },
    '/v1/models': { GET: (_q, res) => sendJson(res, 200, { object: 'list', data: [modelObject()] }) },
    '/v1/chat/completions': { POST: completion('chat') },
    '/v1/completions': { POST: completion('completion') },
    '/v1/qllm/stats': { GET: (_q, res) => {
      const mem = process.memoryUsage();
      sendJson(res, 200, {
        model: model.info,
        context_length: limits.contextLength,
        gpu_memory: model.memory(),
        f16_weight_bytes: model.info.f16WeightBytes,
        process: { rss: mem.rss, heap_used: mem.heapUsed },
        queue: { running: queue.running, waiting: queue.waiting, capacity: queue.capacity },
        served,
        last: last ? { ...last.timings, completion_tokens: last.stats.generatedTokens, prompt_tokens: last.stats.promptTokens } : null,
      });
    } },
  };

  const authorized = (req: http.IncomingMessage): boolean => {
    if (!keyHash) return true;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    return timingSafeEqual(createHash('sha256').update(m[1].trim()).digest(), keyHash);
  };

  const server = http.createServer(async (req, res) => {
    const t0 = performance.now();
    const state: RunState = { tokens: 0, clientClosed: false };
    let path = '?';
    res.on('close', () => {
      const ms = Math.round(performance.now() - t0);
      log(`${req.method} ${path} ${res.statusCode} ${state.tokens} tok ${ms} ms${state.clientClosed || !res.writableFinished ? ' (client closed)' : ''}`);
    });
    try {
      path = new URL(req.url ?? '/', 'http://x').pathname;
      if (opts.cors) {
        res.setHeader('Access-Control-Allow-Origin', opts.cors);
        if (opts.cors !== '*') res.setHeader('Vary', 'Origin');
      }
      const modelMatch = /^\/v1\/models\/(.+)$/.exec(path);
      const route = modelMatch
        ? { GET: (_q: unknown, r: http.ServerResponse) => {
            const id = decodeURIComponent(modelMatch[1]);
            if (id !== limits.modelId) throw apiError(404, `The model '${id}' does not exist: this server serves '${limits.modelId}'`, 'model_not_found');
            sendJson(r, 200, modelObject());
          } } as Partial<Record<string, Handler>>
        : routes[path];
      if (!route) throw apiError(404, `no route ${req.method} ${path}: see /v1/models, /v1/chat/completions, /v1/completions`, 'not_found');
      const allowed = Object.keys(route);
      if (req.method === 'OPTIONS' && opts.cors) {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': [...allowed, 'OPTIONS'].join(', '),
          'Access-Control-Allow-Headers': 'Authorization, Content-Type',
          'Access-Control-Max-Age': '600',
        });
        res.end();
        return;
      }
      const handler = route[req.method === 'HEAD' ? 'GET' : req.method ?? ''];
      if (!handler) {
        res.setHeader('Allow', allowed.join(', '));
        throw apiError(405, `${req.method} is not allowed on ${path}: use ${allowed.join(' or ')}`, 'method_not_allowed');
      }
      // The page is static and holds no data; it asks for the key itself.
      if (path !== '/health' && path !== '/' && !authorized(req)) {
        throw apiError(401, 'missing or wrong API key: send the header Authorization: Bearer <key>', 'invalid_api_key');
      }
      await handler(req, res, state);
    } catch (e) {
      const err = toApiError(e);
      if (err.status >= 500 && err.code === 'internal_error') log(`internal error on ${req.method} ${path}: ${(e as Error)?.stack ?? e}`);
      if (err.status === 413 || err.status === 400) req.resume();
      sendError(res, err);
    }
  });
  server.keepAliveTimeout = 5000;

  let closing: Promise<void> | undefined;
  return {
    server,
    listen: () => new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
        ? new UsageError(`port ${port} on ${host} is already in use: pass --port N (or stop the other server)`)
        : e.code === 'EADDRNOTAVAIL' ? new UsageError(`cannot bind --host ${host}: no such local address`) : e));
      server.listen(port, host, () => {
        const a = server.address() as AddressInfo;
        if (keyHash && !isLoopback(host)) log(`warning: listening on ${host}:${a.port} beyond this machine; every endpoint but /health needs the API key`);
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ port: a.port, host: a.address, url: `http://${h}:${a.port}` });
      });
    }),
    close: () => {
      closing ??= (async () => {
        draining = true;
        queue.rejectAll(shuttingDown());
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        // Let the stream in flight finish, within the grace period, then cancel it.
        const a = active;
        if (a) {
          let timer: NodeJS.Timeout | undefined;
          const grace = new Promise<void>((r) => { timer = setTimeout(r, opts.drainMs ?? 10_000); });
          await Promise.race([a.done, grace]);
          clearTimeout(timer);
          a.ac.abort();
          await a.done;
        }
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
