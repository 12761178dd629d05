// Where a batched decode step's time goes, for --parallel work: GPU time per
// step (timestamp queries) of a step of S sequences × 1 token beside a
// one-token step, then wall time per step in alternating rounds of three kinds
// of step: batched as one dispatch per layer (llama-batch-chain.ts, on CPU
// rasterisers), batched step by step, and S one-token steps.
//   npx tsx scripts/profile-batch.ts models/s110m-q4_0.gguf [--seqs 4] [--steps 16] [--rounds 3]
import { parseArgs } from 'node:util';
import { loadModel } from '../src/model-api.ts';
import type { LlamaModel } from '../src/models/llama.ts';

const { values: v, positionals } = parseArgs({ allowPositionals: true, options: { seqs: { type: 'string', default: '4' }, steps: { type: 'string', default: '16' }, rounds: { type: 'string', default: '3' } } });
const S = Number(v.seqs), steps = Number(v.steps), rounds = Number(v.rounds);
const prompt = [1, 400, 500, 600, 700, 800, 900, 1000];

const chained = await loadModel(positionals[0], { parallel: S });
const plain = await loadModel(positionals[0], { parallel: S });
// The same model with its batched chains dropped: its batched steps go step by step (a private field; a script's shortcut).
(plain.llama as unknown as { batchChains?: unknown }).batchChains = undefined;
const llama = chained.llama;
console.log(`batched steps as one dispatch per layer: ${llama.batchChained}`);

// Each model keeps its sequences' positions and last ids.
const state = new Map<LlamaModel, { pos: number; ids: number[] }>();
for (const m of [chained.llama, plain.llama]) {
  for (let s = 0; s < S; s++) await m.forwardArgmax(prompt, 0, { seq: s });
  state.set(m, { pos: prompt.length, ids: Array.from({ length: S }, (_, s) => 2000 + s) });
}
const batchStep = async (m: LlamaModel) => {
  const st = state.get(m)!;
  st.ids = (await m.forwardBatch(st.ids.map((id, s) => ({ seq: s, tokens: [id], pos: st.pos })))).ids;
  st.pos++;
};
const singleSteps = async (m: LlamaModel) => {
  const st = state.get(m)!;
  for (let s = 0; s < S; s++) st.ids[s] = await m.forwardArgmax([st.ids[s]], st.pos, { seq: s });
  st.pos++;
};

if (llama.enableProfile()) {
  llama.takeProfile();
  const table = (label: string, per: number) => {
    const rows = [...llama.takeProfile().entries()].map(([k, x]) => [k, x.ms / per] as const);
    console.log(`\n${label}: ${rows.reduce((s, r) => s + r[1], 0).toFixed(1)} ms GPU per step`);
    for (const [k, ms] of rows.sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(34)} ${ms.toFixed(2).padStart(8)} ms`);
  };
  for (let i = 0; i < steps; i++) await batchStep(llama);
  table(`batched step, ${S} sequences × 1 token`, steps);
  for (let i = 0; i < steps; i++) await singleSteps(llama);
  table('one-token step', steps * S);
}

// Wall time, without profiling (a fresh pair of models would compile again: the profiled one is reused, its profiler idle).
const kinds: [string, () => Promise<void>][] = [
  ['batched, chained', () => batchStep(chained.llama)],
  ['batched, step by step', () => batchStep(plain.llama)],
  [`${S} one-token steps`, () => singleSteps(chained.llama)],
];
const wall = new Map<string, number[]>(kinds.map(([k]) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [k, f] of kinds) {
    const t = performance.now();
    for (let i = 0; i < steps; i++) await f();
    wall.get(k)!.push((performance.now() - t) / steps);
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const single = med(wall.get(kinds[2][0])!);
console.log(`\nwall ms per step of ${S} tokens (median of ${rounds} alternating rounds of ${steps} steps):`);
for (const [k] of kinds) console.log(`  ${k.padEnd(24)} ${med(wall.get(k)!).toFixed(1).padStart(7)} ms   tokens/s vs one-token steps ${(single / med(wall.get(k)!)).toFixed(2)}×`);
chained.dispose();
plain.dispose();
