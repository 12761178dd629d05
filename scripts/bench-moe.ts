// npx tsx scripts/bench-moe.ts [--type q8_0] [--rounds 3] [-p 64] [-n 32] [--dir DIR]
// Does MoE decode speed track the weights a token reads (the active experts)
// or all of them? Three synthetic models of one shape (make-model presets):
//   moe-bench         qwen3moe, dim 1024, 8 layers, 8 experts of FFN 2048, top-2
//   moe-bench-active  dense qwen3 of the active size: FFN 4096 = 2 × 2048
//   moe-bench-total   dense qwen3 of the total size: FFN 16384 = 8 × 2048
// Each round runs `qllm bench -r 1` on each model in a fresh process, in a
// rotating order (the machine is shared and noisy: alternating spreads the
// noise over all three), and the medians over rounds are printed with the
// weight bytes a decode token reads (qllm info's active bytes).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openGguf } from '../src/gguf/reader.ts';
import { describeModel } from '../src/info.ts';
import { makeModel } from '../src/synth/make-model.ts';

const { values: v } = parseArgs({
  options: { type: { type: 'string', default: 'q8_0' }, rounds: { type: 'string', default: '3' }, p: { type: 'string', short: 'p', default: '64' }, n: { type: 'string', short: 'n', default: '32' }, dir: { type: 'string', default: '/tmp/qllm-bench-moe' } },
});
const PRESETS = ['moe-bench', 'moe-bench-active', 'moe-bench-total'];
mkdirSync(v.dir!, { recursive: true });

const models: { preset: string; path: string; total: number; active: number; decode: number[]; prefill: number[] }[] = [];
for (const preset of PRESETS) {
  const path = join(v.dir!, `${preset}-${v.type}.gguf`);
  if (!existsSync(path)) {
    console.error(`making ${path}`);
    await makeModel({ out: path, preset, type: v.type, seed: 1 });
  }
  const f = await openGguf(path);
  const r = describeModel(f);
  await f.close();
  models.push({ preset, path, total: r.memory.weights_stored_bytes, active: r.active_weight_bytes, decode: [], prefill: [] });
}

const qllm = join(import.meta.dirname, '../bin/qllm.mjs');
const rounds = Number(v.rounds);
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < models.length; i++) {
    const m = models[(i + round) % models.length];
    const out = execFileSync(process.execPath, [qllm, 'bench', m.path, '-p', v.p!, '-n', v.n!, '-r', '1', '--json'], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    const j = JSON.parse(out.trim().split('\n').at(-1)!);
    m.decode.push(j.decode_tok_s.median);
    m.prefill.push(j.prefill_tok_s.median);
    console.error(`round ${round + 1}: ${m.preset} decode ${j.decode_tok_s.median.toFixed(2)} tok/s, prefill ${j.prefill_tok_s.median.toFixed(1)} tok/s`);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const MB = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`type ${v.type}, -p ${v.p} -n ${v.n}, ${rounds} rounds (median; min..max)`);
console.log('model              weights MiB  read/token MiB  decode tok/s          prefill tok/s     decode × read GB/s');
for (const m of models) {
  const d = median(m.decode);
  console.log(
    `${m.preset.padEnd(18)} ${MB(m.total).padStart(11)} ${MB(m.active).padStart(15)}  ${d.toFixed(2).padStart(6)} (${Math.min(...m.decode).toFixed(2)}..${Math.max(...m.decode).toFixed(2)})  ${median(m.prefill).toFixed(1).padStart(7)}         ${((d * m.active) / 1e9).toFixed(2).padStart(6)}`,
  );
}
