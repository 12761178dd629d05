// llama.cpp's CPU speed on a GGUF, for docs/PERFORMANCE.md's "llama.cpp CPU"
// column: prefill and decode tok/s through the devDependency node-llama-cpp
// (its prebuilt CPU build; nothing is downloaded or compiled).
// npx tsx scripts/bench-llamacpp.ts model.gguf [-p 64] [-n 32] [-r 3] [-t 2] [-c 256]
// Prints one JSON line: { model, threads, prefill_tok_s, decode_tok_s } (medians over -r runs).
import { parseArgs } from 'node:util';
import { readConfig } from '../src/config.ts';
import { openGguf } from '../src/gguf/reader.ts';

const { values: v, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { p: { type: 'string', default: '64' }, n: { type: 'string', default: '32' }, r: { type: 'string', default: '3' }, t: { type: 'string', default: '2' }, c: { type: 'string', default: '256' } },
  allowPositionals: true,
});
const path = positionals[0];
if (!path) {
  console.error('usage: npx tsx scripts/bench-llamacpp.ts model.gguf [-p 64] [-n 32] [-r 3] [-t 2] [-c 256]');
  process.exit(1);
}
const [P, N, R, T, C] = [v.p, v.n, v.r, v.t, v.c].map(Number);
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: T, logLevel: LlamaLogLevel.error, progressLogs: false });
// No mmap: this VM reclaims idle page cache (DAMON), so mmap'd weights were re-read from disk on every decode step.
const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
const gguf = await openGguf(path);
const V = readConfig(gguf).vocabSize;
await gguf.close();
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const prefill: number[] = [];
const decode: number[] = [];
for (let r = 0; r <= R; r++) {
  const ctx = await model.createContext({ contextSize: C, batchSize: Math.min(512, C), threads: T, sequences: 1 });
  const seq = ctx.getSequence();
  // Any ids work for speed; from 10 up, clear of the special tokens. No
  // sampling: prefill evaluates the prompt, decode feeds one token at a time
  // (what a generation step costs llama.cpp, without the sampler's work).
  const ids = Array.from({ length: P + N }, (_, i) => 10 + ((i * 7919) % Math.min(1000, V - 10))) as never[];
  const t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, P));
  const t1 = performance.now();
  const n = N;
  for (let i = 0; i < N; i++) await seq.evaluateWithoutGeneratingNewTokens([ids[P + i]]);
  const t2 = performance.now();
  await ctx.dispose();
  if (r === 0) continue; // warm-up
  prefill.push((P / (t1 - t0)) * 1000);
  decode.push((n / (t2 - t1)) * 1000);
}
console.log(JSON.stringify({ model: path, threads: T, prompt: P, generated: N, prefill_tok_s: +median(prefill).toFixed(2), decode_tok_s: +median(decode).toFixed(2) }));
await model.dispose();
await llama.dispose();
