// `qllm serve`: an HTTP server over one loaded Model, on node:http. Three API
// dialects share one generation core (generate.ts) and one port:
//   OpenAI        /v1/models[/<id>], /v1/chat/completions, /v1/completions   (openai.ts)
//   llama-server  /tokenize, /detokenize, /apply-template, /props, /metrics   (llama-server.ts)
//   Ollama        /api/version, /api/tags, /api/ps, /api/show, /api/chat, /api/generate  (ollama.ts)
// and qllm's own routes below: the chat page at /, /health, /v1/qllm/stats.
// Up to --parallel generations run at once, each in a slot with its own KV
// cache region (slots.ts), their decode steps batched by the model; the rest
// wait in a bounded FIFO, and a full queue answers 429.
// The server can listen before the model has loaded (every model route answers
// 503 until then), so a busy port is found before minutes of loading.
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { GenerationStats, Model } from '../api.ts';
import { UsageError } from '../errors.ts';
import { formatWeightSavings } from '../info.ts';
import type { ReasoningFormat } from '../reasoning.ts';
import { apiError } from './errors.ts';
import { sendFile } from './files.ts';
import { Metrics, type RunState, type ServeContext } from './generate.ts';
import { guard } from './guard.ts';
import { isLoopback, sendError, sendJson, toApiError, type Dialect, type Route } from './http-util.ts';
import { llamaServerDialect } from './llama-server.ts';
import { modelMeta, type ModelMeta } from './model-meta.ts';
import { ollamaDialect } from './ollama.ts';
import { openaiDialect, timingsOf } from './openai.ts';
import { FifoQueue } from './queue.ts';
import { createSlots } from './slots.ts';

export interface ServerOptions {
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Required when `host` is not a loopback address. */
  apiKey?: string;
  /** Requests that may wait while every slot generates. Default 64. */
  queue?: number;
  /**
   * Conversations that generate at once (slots; default 4), up to what the
   * model holds (LoadOptions.parallel): a model without sessions has one.
   */
  parallel?: number;
  /** Origin allowed by CORS (or '*'); other pages' requests are refused when unset. */
  cors?: string;
  /** Context the model was loaded with; default model.info.contextLength. */
  contextLength?: number;
  /** The GGUF file served (listed by name in /v1/models and /api/tags, shown by /props, and at /model.gguf for the page's in-browser mode). */
  modelPath?: string;
  /** The browser bundle served at /qllm.browser.js; default: the package's dist/qllm.browser.js. */
  browserBundle?: string;
  /** What the server cannot read from a plain Model (tests, embedders); see model-meta.ts. */
  meta?: Partial<ModelMeta>;
  /** max_tokens when a request gives none; default: until EOS or the end of the context. */
  defaultMaxTokens?: number;
  /** A reasoning model's thinking in chat replies: 'auto' (default) sends it apart (reasoning_content), 'none' inline (llama-server's --reasoning-format). */
  reasoningFormat?: ReasoningFormat;
  /**
   * Keep generating past the end of the context, as llama-server's --context-shift:
   * keep the request's n_keep (Ollama: num_keep) or its system messages, drop half
   * of the rest; a prompt longer than the context is cut instead of refused. Default false.
   */
  contextShift?: boolean;
  /** Prometheus text at /metrics. Default true. */
  metrics?: boolean;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** On close(), how long the generations in flight may go on before they are aborted. Default 10 s. */
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
const ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2f6fde"/><text x="8" y="12.5" font-size="12" font-family="sans-serif" text-anchor="middle" fill="#fff">q</text></svg>';

/** Answer without the API key: static, and no data of the model's. */
const PUBLIC = new Set(['/', '/health', '/favicon.ico', '/favicon.svg', '/qllm.browser.js']);

/** dist/qllm.browser.js (`npm run build`), seen from dist/serve/server.js or from src/serve/server.ts. */
function defaultBundle(): string {
  const built = fileURLToPath(new URL('../qllm.browser.js', import.meta.url));
  return existsSync(built) ? built : fileURLToPath(new URL('../../dist/qllm.browser.js', import.meta.url));
}

/** The request target's path; 400 for one no URL parser accepts. */
function targetPath(url: string | undefined): string {
  const raw = url ?? '/';
  if (raw.startsWith('/')) return raw.split(/[?#]/, 1)[0];
  try {
    return new URL(raw).pathname; // absolute-form, as a proxy sends it
  } catch {
    throw apiError(400, `request target ${JSON.stringify(raw.slice(0, 40))} is not a path`, 'invalid_target');
  }
}

export function createServer(model: Model | Promise<Model>, opts: ServerOptions = {}): QllmServer {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!isLoopback(host) && !opts.apiKey) {
    throw new UsageError(`--host ${host} exposes the server beyond this machine: also pass --api-key KEY (or use --host 127.0.0.1)`);
  }
  if (opts.apiKey !== undefined && opts.apiKey.length < 1) throw new UsageError('--api-key is empty: pass a non-empty key');
  const capacity = opts.queue ?? 64;
  let queue = new FifoQueue(capacity); // one slot until the model is there (model routes answer 503 until then)
  const metrics = new Metrics();
  const keyHash = opts.apiKey ? createHash('sha256').update(opts.apiKey).digest() : undefined;
  const started = Math.floor(Date.now() / 1000);
  let draining = false;
  const active = new Set<{ ac: AbortController; done: Promise<void> }>();
  let last: { stats: GenerationStats; totalMs: number } | undefined;
  let served = 0;

  // Routes that need the model, built once it is there.
  let app: { ctx: ServeContext; dialects: Dialect[]; own: Record<string, Route> } | undefined;
  let loadFailed = false;
  const build = (m: Model) => {
    const slots = createSlots(m, opts.parallel ?? 4);
    queue = new FifoQueue(capacity, slots.length);
    const ctx: ServeContext = {
      model: m,
      slots,
      meta: modelMeta(m, opts.modelPath, opts.meta),
      contextLength: Math.min(opts.contextLength ?? m.info.contextLength, m.info.contextLength),
      defaultMaxTokens: opts.defaultMaxTokens,
      reasoningFormat: opts.reasoningFormat,
      contextShift: opts.contextShift ?? false,
      queue, metrics, started, log,
      maxBody: opts.maxBodyBytes ?? 1 << 20,
      draining: () => draining,
      track: (ac, done) => {
        const a = { ac, done };
        active.add(a);
        done.then(() => active.delete(a));
      },
      onStats: (stats, totalMs) => { last = { stats, totalMs }; served++; },
    };
    const own: Record<string, Route> = {
      '/v1/qllm/stats': { GET: (_q, res) => {
        const mem = process.memoryUsage();
        const gpu = m.memory();
        sendJson(res, 200, {
          model: m.info,
          context_length: ctx.contextLength,
          gpu_memory: gpu,
          f16_weight_bytes: m.info.f16WeightBytes,
          weights_vs_f16: formatWeightSavings(gpu.weights, m.info.f16WeightBytes),
          // The page offers "run in this browser" only when both files are there to send.
          browser_bundle: !!opts.modelPath && existsSync(opts.browserBundle ?? defaultBundle()),
          process: { rss: mem.rss, heap_used: mem.heapUsed },
          queue: { running: queue.running, busy: queue.busy, slots: queue.slots, waiting: queue.waiting, capacity: queue.capacity },
          served,
          context_shift: ctx.contextShift,
          // Over every generation: shifts made, and prompts cut to fit (--context-shift).
          context_shifts: metrics.contextShifts,
          truncated_prompts: metrics.truncatedPrompts,
          last: last ? { ...timingsOf(last.stats, last.totalMs, gpu), completion_tokens: last.stats.generatedTokens, prompt_tokens: last.stats.promptTokens } : null,
        });
      } },
    };
    app = { ctx, own, dialects: [openaiDialect(ctx), llamaServerDialect(ctx, { metrics: opts.metrics ?? true }), ollamaDialect(ctx)] };
  };
  if (model instanceof Promise) model.then(build, () => { loadFailed = true; });
  else build(model);

  // qllm's own routes that work before the model is there.
  const routes: Record<string, Route> = {
    '/': { GET: (_q, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        // 'self' scripts: the in-browser mode imports /qllm.browser.js.
        'Content-Security-Policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      res.end(PAGE);
    } },
    '/favicon.svg': { GET: (_q, res) => { res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'max-age=86400' }); res.end(ICON); } },
    '/favicon.ico': { GET: (_q, res) => { res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'max-age=86400' }); res.end(ICON); } },
    // The page's in-browser mode: the library bundle and the model file, read by Range requests.
    '/qllm.browser.js': { GET: async (q, res) => {
      if (!(await sendFile(q, res, opts.browserBundle ?? defaultBundle(), 'text/javascript; charset=utf-8'))) {
        throw apiError(404, 'the browser bundle is not built: run npm run build in the qllm checkout', 'not_found');
      }
    } },
    '/model.gguf': { GET: async (q, res) => {
      if (!opts.modelPath || !(await sendFile(q, res, opts.modelPath, 'application/octet-stream'))) throw apiError(404, 'this server has no model file to send', 'not_found');
    } },
    '/health': { GET: (_q, res) => {
      if (draining) return sendJson(res, 503, { status: 'shutting_down' });
      if (!app) return sendJson(res, 503, { status: loadFailed ? 'error' : 'loading' });
      sendJson(res, 200, { status: 'ok' });
    } },
  };

  /** The route for a path, and the dialect whose error shape applies there. */
  const lookup = (path: string): { route?: Route; dialect?: Dialect } => {
    if (routes[path]) return { route: routes[path] };
    if (!app) {
      if (loadFailed) throw apiError(503, 'the model failed to load; see the server log', 'model_not_loaded');
      throw apiError(503, 'the model is still loading; retry in a moment', 'loading');
    }
    if (app.own[path]) return { route: app.own[path] };
    for (const d of app.dialects) {
      const route = d.routes[path] ?? d.match?.(path);
      if (route) return { route, dialect: d };
    }
    return { dialect: app.dialects.find((d) => d.owns?.(path)) };
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
    let dialect: Dialect | undefined;
    res.on('close', () => {
      const ms = Math.round(performance.now() - t0);
      log(`${req.method} ${path} ${res.statusCode} ${state.tokens} tok ${ms} ms${state.clientClosed || !res.writableFinished ? ' (client closed)' : ''}`);
    });
    try {
      path = targetPath(req.url);
      guard(req, res, { host, apiKey: opts.apiKey, cors: opts.cors });
      const found = lookup(path);
      dialect = found.dialect;
      const route = found.route;
      if (!route) throw apiError(404, `no route ${req.method} ${path}: see /v1/models, /v1/chat/completions, /v1/completions, /api/tags or /props`, 'not_found');
      const allowed = Object.keys(route);
      if (req.method === 'OPTIONS' && opts.cors) {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': [...allowed, 'OPTIONS'].join(', '),
          // The origin is allowed (guard): let it send what it asks to (ollama-js adds Accept and User-Agent).
          'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type',
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
      if (!PUBLIC.has(path) && !authorized(req)) {
        throw apiError(401, 'missing or wrong API key: send the header Authorization: Bearer <key>', 'invalid_api_key');
      }
      await handler(req, res, state);
    } catch (e) {
      const err = toApiError(e);
      if (err.status >= 500 && err.code === 'internal_error') log(`internal error on ${req.method} ${path}: ${(e as Error)?.stack ?? e}`);
      if (!req.complete) req.resume(); // discard an unread body so the reply can go out
      // Refused before routing (Host, Origin, loading): still in the shape of the dialect the path belongs to.
      dialect ??= app?.dialects.find((d) => d.owns?.(path));
      sendError(res, err, dialect?.errorBody);
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
        queue.rejectAll(apiError(503, 'server is shutting down; retry against another instance', 'shutting_down'));
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        // Let the streams in flight finish, within the grace period, then cancel them.
        const running = [...active];
        if (running.length) {
          let timer: NodeJS.Timeout | undefined;
          const grace = new Promise<void>((r) => { timer = setTimeout(r, opts.drainMs ?? 10_000); });
          await Promise.race([Promise.all(running.map((a) => a.done)), grace]);
          clearTimeout(timer);
          for (const a of running) a.ac.abort();
          await Promise.all(running.map((a) => a.done));
        }
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
