// Load test for `qllm serve`: N concurrent streaming clients on loopback.
//   npx tsx scripts/load-test.ts --url http://127.0.0.1:8080 [--clients 50] [--max-tokens 16] [--timeout-s 120] [--api-key KEY]
//   npx tsx scripts/load-test.ts --fake        (starts an in-process server over the test FakeModel)
// Each client checks that its own stream is well-formed (every event parses, one id,
// role first, exactly one finish_reason, [DONE] last) and not mixed with another
// client's (ids unique across clients; with --fake, the echoed nonce is its own).
// Prints completed / 429 / failed counts and the server's RSS before and after.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' }, clients: { type: 'string', default: '50' }, 'max-tokens': { type: 'string', default: '16' },
    'timeout-s': { type: 'string', default: '120' }, 'api-key': { type: 'string' }, fake: { type: 'boolean' },
  },
});
const clients = Math.min(500, Math.max(1, Number(values.clients)));
const maxTokens = Math.max(1, Number(values['max-tokens']));
const deadline = AbortSignal.timeout(Math.max(1, Number(values['timeout-s'])) * 1000);

let url = values.url;
let stop = async () => {};
if (values.fake) {
  const { createServer } = await import('../src/serve/server.ts');
  const { FakeModel } = await import('../test/serve/fake-model.ts');
  const srv = createServer(new FakeModel({ delayMs: 5 }), { port: 0, log: () => {} });
  url = (await srv.listen()).url;
  stop = () => srv.close();
}
if (!url) { console.error('usage: load-test.ts --url http://127.0.0.1:8080 | --fake'); process.exit(1); }
const base = url.replace(/\/+$/, '');
const headers: Record<string, string> = { 'Content-Type': 'application/json' };
if (values['api-key']) headers.Authorization = `Bearer ${values['api-key']}`;

const rss = async () => ((await (await fetch(`${base}/v1/qllm/stats`, { headers, signal: deadline })).json()).process.rss as number);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

type Outcome = { kind: 'ok'; id: string; text: string; tokens: number } | { kind: '429' } | { kind: 'fail'; why: string };

async function client(i: number): Promise<Outcome> {
  const nonce = `client${i}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST', headers, signal: deadline,
      body: JSON.stringify({ messages: [{ role: 'user', content: `Say the word ${nonce}` }], max_tokens: maxTokens, stream: true, temperature: 0 }),
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
    return { kind: 'ok', id: [...ids][0], text, tokens: chunks.length - 2 };
  } catch (e) {
    return { kind: 'fail', why: (e as Error).message };
  }
}

const before = await rss();
const t0 = performance.now();
const results = await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
const secs = (performance.now() - t0) / 1000;
const after = await rss();
const ok = results.filter((r) => r.kind === 'ok') as Extract<Outcome, { kind: 'ok' }>[];
const dupIds = ok.length - new Set(ok.map((r) => r.id)).size;
const fails = results.filter((r) => r.kind === 'fail') as Extract<Outcome, { kind: 'fail' }>[];
console.log(`${clients} clients in ${secs.toFixed(1)} s: ${ok.length} completed, ${results.filter((r) => r.kind === '429').length} got 429, ${fails.length} failed; ${dupIds} duplicate stream ids`);
for (const f of fails.slice(0, 5)) console.log(`  failed: ${f.why}`);
console.log(`server RSS before ${mib(before)}, after ${mib(after)} (${after >= before ? '+' : ''}${mib(after - before)})`);
await stop();
process.exit(fails.length || dupIds ? 1 : 0);
