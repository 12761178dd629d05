// Native memory over repeated loadModel()/dispose() cycles: prints the process
// RSS and the JS heap every few cycles, and the growth per cycle, so a leak of
// per-model GPU objects (pipelines, bind groups, devices) shows as a slope.
//   node --expose-gc --import tsx scripts/rss-cycles.ts [model.gguf] [cycles=60] [--generate]
// --generate also runs a short greedy generation per cycle. The slope is taken
// over the second half: the first cycles also fill Dawn's and LLVM's caches.
import { loadModel } from '../src/model-api.ts';

const args = process.argv.slice(2);
const gen = args.includes('--generate');
const [path = '../shared/models/stories260K.gguf', n = '60'] = args.filter((a) => !a.startsWith('--'));
const cycles = Number(n);
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const mib = (b: number) => (b / (1 << 20)).toFixed(1);
const sample = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return { rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed };
};

const start = sample();
console.log(`before loading: rss ${mib(start.rss)} MiB, heap ${mib(start.heap)} MiB`);
let first: ReturnType<typeof sample> | undefined;
let mid: ReturnType<typeof sample> | undefined;
const half = Math.floor(cycles / 2);
for (let i = 0; i < cycles; i++) {
  const m = await loadModel(path);
  if (gen) for await (const _ of m.generate('Once', { temperature: 0, maxTokens: 4 }));
  m.dispose();
  // Let Dawn's device-lost callbacks and deferred frees run.
  await new Promise((r) => setTimeout(r, 20));
  const s = sample();
  first ??= s;
  if (i === half - 1) mid = s;
  if (i % 10 === 0 || i === cycles - 1) console.log(`cycle ${i + 1}: rss ${mib(s.rss)} MiB, heap ${mib(s.heap)} MiB`);
  if (i === cycles - 1 && mid) {
    console.log(`rss ${mib(first.rss)} → ${mib(s.rss)} MiB over ${cycles} cycles; ${mib((s.rss - mid.rss) / (cycles - half))} MiB/cycle over cycles ${half + 1}..${cycles}`);
  }
}
