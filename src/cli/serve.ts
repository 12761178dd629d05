// `qllm serve <model.gguf> [--host H] [--port P] [-c CTX] [--parallel N] [--api-key KEY] [--queue N] [--cors ORIGIN]`
// Binds the port first (a busy port is reported at once, not after loading), loads
// the model (requests get 503 meanwhile), serves it (src/serve/server.ts) until
// SIGINT/SIGTERM, then drains: the streams in flight may finish (or are cancelled
// after --drain-ms), queued requests get 503, and the process exits. A second
// signal exits at once.
import type { LoadOptions, Model } from '../api.ts';
import { UsageError } from '../errors.ts';
import { parseKvType } from '../models/kv-cache.ts';
import { REASONING_FORMATS, type ReasoningFormat } from '../reasoning.ts';
import { createServer, type QllmServer, type ServerOptions } from '../serve/server.ts';
import { isLoopback } from '../serve/http-util.ts';
import { num, parse, positionals } from './args.ts';
import { progressBar } from './progress.ts';

const HELP = `usage: qllm serve <model.gguf> [options]
  HTTP server with OpenAI (/v1/chat/completions, /v1/completions, /v1/models),
  llama-server (/tokenize, /detokenize, /apply-template, /props, /metrics) and
  Ollama (/api/chat, /api/generate, /api/tags, ...) routes, and a chat page at /.
  --host H          address to bind (default 127.0.0.1; anything else needs --api-key)
  --port P          port (default 8080; 0 picks a free one)
  -c, --ctx N       context length in tokens, per conversation (default min(model, 2048))
  --parallel N      conversations that generate at once (default 4; 1..64), each with
                    its own KV cache of -c tokens (N × the cache memory); their decode
                    steps run batched, a request joins at the next step, and a prompt
                    that starts like a free slot's last one reuses its cache
  --kv-type T       KV cache type: f16 (default; f32 without shader-f16), f32, q8_0, q4_0
  --api-key KEY     require "Authorization: Bearer KEY" on every endpoint but /health
                    (or set QLLM_API_KEY). Without a key only requests addressed to
                    localhost/127.0.0.1/[::1] are served
  --queue N         requests that may wait while all slots generate (default 64; more get 429)
  --cors ORIGIN     let the web page at ORIGIN (e.g. http://localhost:3000, or *) call
                    the API; other pages' requests are refused
  --max-tokens N    max_tokens when a request gives none (default: until EOS or the
                    end of the context)
  --context-shift   at the end of the context keep generating, as llama-server: keep
                    the request's n_keep (Ollama: num_keep; default its system messages,
                    else the BOS), drop half of the rest; max_tokens may then exceed the
                    context, and a longer prompt is cut instead of refused (off by default)
  --reasoning-format F  a reasoning model's thinking (gpt-oss, <think> models) in chat
                    replies: auto (default; apart, as reasoning_content), deepseek (the
                    same), deepseek-legacy (also left in content), none (inline, as generated)
  --no-metrics      no Prometheus text at /metrics (on by default; --metrics is accepted)
  --drain-ms N      on shutdown, how long the replies in flight may continue (default 10000)`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  ctx: { type: 'string', short: 'c' },
  parallel: { type: 'string' },
  'kv-type': { type: 'string' },
  'api-key': { type: 'string' },
  queue: { type: 'string' },
  cors: { type: 'string' },
  'max-tokens': { type: 'string' },
  'context-shift': { type: 'boolean' },
  'no-context-shift': { type: 'boolean' },
  'drain-ms': { type: 'string' },
  'reasoning-format': { type: 'string' },
  metrics: { type: 'boolean' },
  'no-metrics': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ServeArgs { path: string; load: LoadOptions; server: ServerOptions }

/** Parses and checks every flag before anything slow (loading the model) happens. */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeArgs | 'help' {
  const { values, positionals: pos } = parse(argv, OPTIONS, 'serve');
  if (values.help) return 'help';
  const [path] = positionals(pos, ['model.gguf'], 'serve');
  const host = values.host ?? '127.0.0.1';
  const apiKey = values['api-key'] ?? (env.QLLM_API_KEY || undefined);
  if (!isLoopback(host) && !apiKey) throw new UsageError(`--host ${host} exposes the server beyond this machine: also pass --api-key KEY (or use --host 127.0.0.1)`);
  if (values.cors !== undefined && values.cors !== '*' && !/^https?:\/\/[^/\s]+$/.test(values.cors)) {
    throw new UsageError(`--cors ${values.cors} is not an origin: pass e.g. --cors http://localhost:3000 (scheme://host[:port], no path) or --cors '*'`);
  }
  const ctx = num(values.ctx, '--ctx', { min: 16, max: 1 << 20, integer: true });
  const kvType = parseKvType(values['kv-type'], '--kv-type');
  const parallel = num(values.parallel, '--parallel', { min: 1, max: 64, integer: true, dflt: 4 });
  if (values.metrics && values['no-metrics']) throw new UsageError('--metrics and --no-metrics contradict each other: pass one');
  if (values['context-shift'] && values['no-context-shift']) throw new UsageError('--context-shift and --no-context-shift contradict each other: pass one');
  const reasoningFormat = values['reasoning-format'] as ReasoningFormat | undefined;
  if (reasoningFormat !== undefined && !REASONING_FORMATS.includes(reasoningFormat)) throw new UsageError(`--reasoning-format ${reasoningFormat} is not one of ${REASONING_FORMATS.join(', ')}`);
  return {
    path,
    load: { contextLength: ctx, parallel, ...(kvType ? { kvType } : {}) },
    server: {
      host,
      port: num(values.port, '--port', { min: 0, max: 65535, integer: true, dflt: 8080 }),
      apiKey,
      queue: num(values.queue, '--queue', { min: 0, max: 10_000, integer: true, dflt: 64 }),
      parallel,
      cors: values.cors,
      modelPath: path,
      metrics: !values['no-metrics'],
      defaultMaxTokens: num(values['max-tokens'], '--max-tokens', { min: 1, integer: true }),
      contextShift: values['context-shift'] === true,
      drainMs: num(values['drain-ms'], '--drain-ms', { min: 0, max: 600_000, integer: true, dflt: 10_000 }),
      ...(reasoningFormat ? { reasoningFormat } : {}),
    },
  };
}

async function importLoader(): Promise<(path: string, opts?: LoadOptions) => Promise<Model>> {
  // Imported lazily so that `qllm serve --help` and flag errors never touch WebGPU.
  return (await import('../model-api.ts')).loadModel;
}

const stderr = (l: string) => process.stderr.write(`${l}\n`);

/** `loadModel`: for tests (default: the real loader, imported lazily). */
export async function run(argv: string[], deps: { loadModel?: (path: string, opts?: LoadOptions) => Promise<Model>; log?: (l: string) => void } = {}): Promise<void> {
  const args = parseServeArgs(argv);
  if (args === 'help') return void console.log(HELP);
  const log = deps.log ?? stderr;
  let settle!: { resolve: (m: Model) => void; reject: (e: unknown) => void };
  const loading = new Promise<Model>((resolve, reject) => { settle = { resolve, reject }; });
  loading.catch(() => {}); // the load's failure is reported by the throw below
  const srv = createServer(loading, { ...args.server, contextLength: args.load.contextLength, log });
  // The port first: finding it busy after minutes of loading would waste them.
  const { url } = await srv.listen();
  log(`qllm serve: listening on ${url} (503 until the model has loaded); loading ${args.path}`);
  let model: Model;
  try {
    const loadModel = deps.loadModel ?? (await importLoader());
    const bar = progressBar('loading');
    try {
      model = await loadModel(await (await import('../pull/resolve.ts')).resolveModelArg(args.path), { ...args.load, onProgress: (f, label) => bar.update(f, label) });
    } finally {
      bar.done();
    }
  } catch (e) {
    settle.reject(e);
    await srv.close();
    throw e;
  }
  settle.resolve(model);
  try {
    await untilSignal(srv, model, url, args.server, log);
  } finally {
    model.dispose();
  }
}

/** Serves `model` until SIGINT/SIGTERM, then drains and resolves. */
export async function serveUntilSignal(model: Model, opts: ServerOptions, log = stderr): Promise<void> {
  const srv = createServer(model, { ...opts, log });
  const { url } = await srv.listen();
  await untilSignal(srv, model, url, opts, log);
}

async function untilSignal(srv: QllmServer, model: Model, url: string, opts: ServerOptions, log: (l: string) => void): Promise<void> {
  const i = model.info;
  log(`qllm serve: ${i.name} (${i.architecture}, ctx ${Math.min(opts.contextLength ?? i.contextLength, i.contextLength)}, ${i.parallel ?? 1} parallel) on ${url}  — chat page at ${url}/, API at ${url}/v1`);
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        log(`qllm serve: ${sig} again, exiting now`);
        process.exit(130);
      }
      log(`qllm serve: ${sig}, draining (press Ctrl-C again to exit at once)`);
      srv.close().then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  log('qllm serve: stopped');
}
