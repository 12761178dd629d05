// npx tsx scripts/check-synth-oracle.ts [--arch qwen2,gemma2] [--types f32,q4_0|none] [--steps 32] [--extra] [--presets|--presets-only] [--keep DIR]
// Not run by CI. For every family × weight type: writes the tiny synthetic
// model (src/synth/make-model.ts), loads it in llama.cpp through
// node-llama-cpp (CPU, prebuilt binaries), greedy-decodes `steps` tokens and
// reports whether llama.cpp loaded it and how wide the logits are: the gap
// between the top-1 and top-2 log-probabilities at each step (median, share
// of steps ≥ 1, minimum) and how many distinct tokens the decode produced.
// --extra adds the rope-scaling / tied / sliding-window variants; --presets the
// real-shape presets cut to 2 layers (q4_0), with their 32k-256k vocabularies.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ARCHES, type MakeModelOptions, makeModel, PRESETS } from '../src/synth/make-model.ts';

const { values: a } = parseArgs({
  options: {
    arch: { type: 'string' }, types: { type: 'string' }, steps: { type: 'string' }, extra: { type: 'boolean' }, presets: { type: 'boolean' }, 'presets-only': { type: 'boolean' }, keep: { type: 'string' },
  },
});
const arches = a.arch ? a.arch.split(',') : [...ARCHES];
const types = a.types === 'none' ? [] : a.types ? a.types.split(',') : ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k_m'];
const steps = Number(a.steps ?? 32);
const dir = a.keep ?? mkdtempSync(join(tmpdir(), 'qllm-oracle-'));

interface Case { label: string; opts: Omit<MakeModelOptions, 'out'> }
const cases: Case[] = [];
for (const arch of arches) for (const type of types) cases.push({ label: `${arch} ${type}`, opts: { arch, type } });
if (a.extra) {
  const x: [string, Omit<MakeModelOptions, 'out'>][] = [
    ['llama wide', { arch: 'llama', init: 'wide' }],
    ['llama wide tied', { arch: 'llama', init: 'wide', tied: true }],
    ['llama yarn', { arch: 'llama', init: 'wide', ropeScaling: 'yarn' }],
    ['llama linear', { arch: 'llama', init: 'wide', ropeScaling: 'linear' }],
    ['llama longrope', { arch: 'llama', init: 'wide', ropeScaling: 'longrope' }],
    ['llama rope-freqs', { arch: 'llama', init: 'wide', ropeFreqs: true }],
    ['llama head-dim 32', { arch: 'llama', init: 'wide', headDim: 32 }],
    ['qwen2 yarn', { arch: 'qwen2', ropeScaling: 'yarn' }],
    ['qwen2 tied', { arch: 'qwen2', tied: true }],
    ['qwen3 untied', { arch: 'qwen3', tied: false }],
    ['phi3 longrope', { arch: 'phi3', ropeScaling: 'longrope' }],
    ['phi3 tied', { arch: 'phi3', tied: true }],
    ['granite untied', { arch: 'granite', tied: false }],
    ['granite rope-freqs', { arch: 'granite', ropeFreqs: true }],
    ['gemma3 no pattern', { arch: 'gemma3', swaPattern: 0 }],
    ['gemma3 final-softcap', { arch: 'gemma3', finalSoftcap: 30 }],
    ['gemma3 linear', { arch: 'gemma3', ropeScaling: 'linear', ropeFactor: 8 }],
    ['olmo2 sliding', { arch: 'olmo2', slidingWindow: 16, layers: 4 }],
    ['smollm3 untied', { arch: 'smollm3', tied: false }],
  ];
  for (const [label, opts] of x) cases.push({ label, opts });
}

if (a['presets-only']) cases.length = 0;
if (a.presets || a['presets-only']) {
  for (const preset of Object.keys(PRESETS)) if (!['tiny', 's110m', 'tinyllama'].includes(preset)) cases.push({ label: `${preset} 2 layers q4_0`, opts: { preset, layers: 2, type: 'q4_0' } });
}
if (a.arch) cases.splice(0, cases.length, ...cases.filter((c) => !c.opts.arch || arches.includes(c.opts.arch)));

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
let logs: string[] = [];
const llama = await getLlama({
  gpu: false, build: 'never', logLevel: LlamaLogLevel.warn,
  logger: (level, message) => { if (level === LlamaLogLevel.error || level === LlamaLogLevel.warn) logs.push(message.trim()); },
});

const median = (xs: number[]) => { const s = [...xs].sort((p, q) => p - q); return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN; };
const rows: string[] = [];
console.log('| model | loads | median gap | steps ≥ 1 | min gap | distinct tokens | time | llama.cpp said |');
console.log('|---|---|---|---|---|---|---|---|');
let failed = 0;
for (const c of cases) {
  const out = join(dir, `${c.label.replace(/\W+/g, '_')}.gguf`);
  logs = [];
  let row: string;
  const t0 = performance.now();
  try {
    await makeModel({ out, seed: 1, ...c.opts });
    const model = await llama.loadModel({ modelPath: out });
    const ctx = await model.createContext({ contextSize: 256 });
    const seq = ctx.getSequence();
    const prompt = [1, 300, 301, 302, 303, 310, 320];
    const gaps: number[] = [];
    const seen = new Set<number>();
    let n = 0;
    // biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp's branded Token type
    for await (const o of seq.evaluateWithMetadata(prompt as any, { probabilities: true }, { temperature: 0 })) {
      const top = [...o.probabilities.values()].sort((p, q) => q - p);
      gaps.push(Math.log(top[0]!) - Math.log(Math.max(top[1] ?? 0, 1e-45)));
      seen.add(o.token as unknown as number);
      if (++n >= steps) break;
    }
    await ctx.dispose();
    await model.dispose();
    const warn = [...new Set(logs)].filter((l) => !/n_ctx_seq|n_ctx_per_seq|full capacity/.test(l)).join('; ').slice(0, 120);
    row = `| ${c.label} | yes | ${median(gaps).toFixed(2)} | ${Math.round((100 * gaps.filter((g) => g >= 1).length) / gaps.length)}% | ${Math.min(...gaps).toFixed(2)} | ${seen.size} | ${((performance.now() - t0) / 1000).toFixed(0)} s | ${warn} |`;
  } catch (e) {
    failed++;
    row = `| ${c.label} | **no** | | | | | | ${String((e as Error).message ?? e).split('\n')[0]!.slice(0, 100)}; ${logs.join('; ').slice(0, 200)} |`;
  }
  rows.push(row);
  console.log(row);
  if (!a.keep) rmSync(out, { force: true });
}
await llama.dispose();
if (!a.keep) rmSync(dir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
