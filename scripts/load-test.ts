// Load test for `qllm serve`: N concurrent streaming clients on loopback.
//   npx tsx scripts/load-test.ts --url http://127.0.0.1:8080 [--clients 48] [--max-tokens 16] [--rounds 3] [--timeout-s 600] [--api-key KEY]
//   npx tsx scripts/load-test.ts --fake        (an in-process server over the test FakeModel with 4 sessions)
//   npx tsx scripts/load-test.ts --model models/s110m-q4_0.gguf   (spawns `qllm serve` on it with its defaults)
// Each client checks that its own stream is well-formed (every event parses, one id,
// role first, exactly one finish_reason, [DONE] last) and not mixed with another
// client's: ids unique across clients; with --fake, the echoed nonce is its own;
// on a real model (temperature 0) its text equals what its prompt gives when it
// runs alone, asked once per prompt before the burst (prompts cycle through a set
// of 8). Prints completed / 429 / failed counts per round and the server's RSS
// before the first round and after each.
import { parseArgs } from 'node:util';
import { spawnServe } from './serve-child.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' }, clients: { type: 'string', default: '48' }, 'max-tokens': { type: 'string', default: '16' },
    rounds: { type: 'string', default: '1' }, 'timeout-s': { type: 'string', default: '600' }, 'api-key': { type: 'string' },
    fake: { type: 'boolean' }, model: { type: 'string' }, serve: { type: 'string', default: '' },
  },
});
const clients = Math.min(500, Math.max(1, Number(values.clients)));
const maxTokens = Math.max(1, Number(values['max-tokens']));
const rounds = Math.max(1, Number(values.rounds));
const deadline = AbortSignal.timeout(Math.max(1, Number(values['timeout-s'])) * 1000);

let url = values.url;
let stop = async () => {};
if (values.fake) {
  const { createServer } = await import('../src/serve/server.ts');
  const { FakeParallelModel } = await import('../test/serve/fake-parallel.ts');
  const srv = createServer(new FakeParallelModel(4, { delayMs: 5 }), { port: 0, log: () => {} });
  url = (await srv.listen()).url;
  stop = () => srv.close();
} else if (values.model) {
  ({ url, stop } = await spawnServe(values.model, values.serve.split(/\s+/).filter(Boolean)));
}
if (!url) { console.error('usage: load-test.ts --url http://127.0.0.1:8080 | --fake | --model FILE.gguf'); process.exit(1); }
const base = url.replace(/\/+$/, '');
const headers: Record<string, string> = { 'Content-Type': 'application/json' };
if (values['api-key']) headers.Authorization = `Bearer ${values['api-key']}`;

const rss = async () => ((await (await fetch(`${base}/v1/qllm/stats`, { headers, signal: deadline })).json()).process.rss as number);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

const PROMPTS = ['Tell me a story about a cat.', 'What is the sky?', 'Write about a red ball.', 'Once upon a time', 'Say something kind.', 'Describe a big tree.', 'Where do birds live?', 'A dog and a boy'];
const promptOf = (i: number, nonce: string) => (values.fake ? `Say the word ${nonce}` : PROMPTS[i % PROMPTS.length]);

type Outcome = { kind: 'ok'; id: string; text: string; tokens: number } | { kind: '429' } | { kind: 'fail'; why: string };

async function client(i: number, solo?: string[]): Promise<Outcome> {
  const nonce = `client${i}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST', headers, signal: deadline,
      body: JSON.stringify({ messages: [{ role: 'user', content: promptOf(i, nonce) }], max_tokens: maxTokens, stream: true, temperature: 0 }),
    });
    if (res.status === 429) { await res.text(); return { kind: '429' }; }
    if (res.status !== 200) return { kind: 'fail', why: `HTTP ${res.status} ${await res.text()}` };
    const raw = await res.text();
    const events = raw.split('\n\n').filter((e) => e !== '');
    if (events.some((e) => !e.startsWith('data: '))) return { kind: 'fail', why: 'an event is not a data: line' };
    const data = events.map((e) => e.slice(6));
    if (data.at(-1) !== '[DONE]' || data.indexOf('[DONE]') !== data.length - 1) return { kind: 'fail', why: '[DONE] is not the last event (exactly once)' };
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const ids = new Set(chunks.map((c) => c.id));
    if (ids.size !== 1) return { kind: 'fail', why: `stream carries ${ids.size} ids` };
    if (chunks.some((c) => c.object !== 'chat.completion.chunk')) return { kind: 'fail', why: 'wrong object type' };
    if (chunks[0].choices[0]?.delta?.role !== 'assistant') return { kind: 'fail', why: 'first chunk has no assistant role' };
    const fins = chunks.filter((c) => c.choices[0]?.finish_reason);
    if (fins.length !== 1 || fins[0] !== chunks.at(-1)) return { kind: 'fail', why: 'finish_reason not exactly once, on the last chunk' };
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    if (values.fake && !text.includes(nonce)) return { kind: 'fail', why: `reply lacks this client's nonce: ${text.slice(0, 60)}` };
    if (solo && text !== solo[i % PROMPTS.length]) return { kind: 'fail', why: `reply differs from its prompt's solo reply: ${JSON.stringify(text.slice(0, 40))} vs ${JSON.stringify(solo[i % PROMPTS.length].slice(0, 40))}` };
    return { kind: 'ok', id: [...ids][0], text, tokens: chunks.length - 2 };
  } catch (e) {
    return { kind: 'fail', why: (e as Error).message };
  }
}

// A real model: each prompt's reply when it runs alone (one request at a time), to compare the burst's with.
let solo: string[] | undefined;
if (!values.fake) {
  solo = [];
  for (let i = 0; i < PROMPTS.length; i++) {
    const r = await client(i);
    if (r.kind !== 'ok') { console.error(`solo run of prompt ${i} failed: ${r.kind === 'fail' ? r.why : r.kind}`); process.exit(1); }
    solo.push(r.text);
  }
}

const before = await rss();
console.log(`server RSS before: ${mib(before)}`);
let bad = 0;
for (let round = 1; round <= rounds; round++) {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: clients }, (_, i) => client(i, solo)));
  const secs = (performance.now() - t0) / 1000;
  const after = await rss();
  const ok = results.filter((r) => r.kind === 'ok') as Extract<Outcome, { kind: 'ok' }>[];
  const dupIds = ok.length - new Set(ok.map((r) => r.id)).size;
  const fails = results.filter((r) => r.kind === 'fail') as Extract<Outcome, { kind: 'fail' }>[];
  const tokens = ok.reduce((n, r) => n + r.tokens, 0);
  console.log(`round ${round}: ${clients} clients in ${secs.toFixed(1)} s: ${ok.length} completed, ${results.filter((r) => r.kind === '429').length} got 429, ${fails.length} failed; ${dupIds} duplicate stream ids; ${tokens} tokens (${(tokens / secs).toFixed(1)} tok/s); server RSS ${mib(after)} (${after >= before ? '+' : ''}${mib(after - before)} since before)`);
  for (const f of fails.slice(0, 5)) console.log(`  failed: ${f.why}`);
  bad += fails.length + dupIds + (ok.length < clients ? 1 : 0);
}
await stop();
process.exit(bad ? 1 : 0);
