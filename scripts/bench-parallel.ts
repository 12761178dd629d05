// Aggregate decode throughput of `qllm serve --parallel N`: S concurrent
// streaming completions of T tokens each, timed from the burst to the last
// [DONE], against one server per N (all loaded first, then measured in
// alternation, round after round, so machine noise spreads over all of them).
//   npx tsx scripts/bench-parallel.ts models/s110m-q4_0.gguf [--parallel 1,2,4,8] [--streams 8] [--tokens 32] [--rounds 3] [-c 512]
// Each stream's prompt is new (its round and number first), so no slot's
// prompt cache helps; temperature 0, and EOS ignored by asking for T tokens
// of a random-weight model (a real model may stop early: the tokens counted
// are those streamed). Prints per round and N: seconds, tokens, tok/s; then
// per N the median, and the speedup of each N over N = 1 per round (the ratio
// of the two runs next to each other). Also each server's RSS after loading
// and after the last round.
import { parseArgs } from 'node:util';
import { spawnServe } from './serve-child.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { parallel: { type: 'string', default: '1,2,4,8' }, streams: { type: 'string', default: '8' }, tokens: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' }, ctx: { type: 'string', short: 'c', default: '512' } },
});
const model = positionals[0];
if (!model) { console.error('usage: bench-parallel.ts MODEL.gguf [--parallel 1,2,4,8] [--streams 8] [--tokens 32] [--rounds 3] [-c 512]'); process.exit(1); }
const ns = values.parallel.split(',').map(Number);
const streams = Number(values.streams), tokens = Number(values.tokens), rounds = Number(values.rounds);

interface Server { n: number; url: string; stop: () => Promise<void> }

async function serve(n: number): Promise<Server> {
  return { n, ...(await spawnServe(model, ['--parallel', String(n), '-c', values.ctx])) };
}

/** One stream: the number of tokens it got. */
async function stream(url: string, prompt: string): Promise<number> {
  const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: tokens, temperature: 0, stream: true }) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const data = (await res.text()).split('\n\n').filter(Boolean).map((e) => e.slice(6));
  return data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)).filter((c) => c.choices[0]?.text).length;
}

async function burst(s: Server, tag: string): Promise<{ secs: number; tokens: number }> {
  const t0 = performance.now();
  const got = await Promise.all(Array.from({ length: streams }, (_, i) => stream(s.url, `${tag} story ${i}: Once upon a time, a`)));
  return { secs: (performance.now() - t0) / 1000, tokens: got.reduce((a, b) => a + b, 0) };
}

const rss = async (s: Server) => ((await (await fetch(`${s.url}/v1/qllm/stats`)).json()).process.rss as number) / 2 ** 20;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

const servers: Server[] = [];
for (const n of ns) servers.push(await serve(n));
try {
  const rssLoaded = await Promise.all(servers.map(rss));
  for (const s of servers) await burst(s, 'warm-up');
  const results = new Map<number, { secs: number; tokens: number }[]>(ns.map((n) => [n, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const s of servers) {
      const b = await burst(s, `round ${r}`);
      results.get(s.n)!.push(b);
      console.log(`round ${r} --parallel ${s.n}: ${streams} streams × ${tokens} tokens in ${b.secs.toFixed(2)} s, ${b.tokens} tokens, ${(b.tokens / b.secs).toFixed(1)} tok/s`);
    }
  }
  const rssAfter = await Promise.all(servers.map(rss));
  const one = results.get(1);
  for (const [i, s] of servers.entries()) {
    const runs = results.get(s.n)!;
    const speedups = one && s.n !== 1 ? runs.map((b, k) => one[k].secs / b.secs) : [];
    console.log(`--parallel ${s.n}: median ${median(runs.map((b) => b.tokens / b.secs)).toFixed(1)} tok/s (${runs.map((b) => (b.tokens / b.secs).toFixed(1)).join(', ')})${speedups.length ? `; ${speedups.map((x) => `${x.toFixed(2)}×`).join(', ')} sooner than --parallel 1` : ''}; RSS ${rssLoaded[i].toFixed(0)} MiB loaded, ${rssAfter[i].toFixed(0)} MiB after`);
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}
