// Decode tok/s with and without a JSON schema (constrained sampling), in
// alternating runs on the same loaded model, so the machine's drift hits both
// sides alike. Makes the synthetic models (32k Llama vocabulary) if missing.
//   npx tsx scripts/bench-grammar.ts [-m models/s110m-q4_0.gguf,models/tinyllama-q4_0.gguf]
//       [--pairs 3] [-n 48] [--temp 0.8,0]
// Each pair runs A (no schema) then B (schema), the next pair B then A. Per
// temperature: A and B's decode tok/s per run, their medians, and B/A.
// At temperature 0, A is greedy on the GPU (argmax read back, not the logits);
// the grammar needs the logits row, so B also pays the readback.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GenerateOptions } from '../src/api.ts';
import { GrammarConstraint } from '../src/grammar/index.ts';
import { loadModel } from '../src/model-api.ts';
import { makeModel } from '../src/synth/make-model.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { values: v } = parseArgs({
  options: {
    models: { type: 'string', short: 'm', default: 'models/s110m-q4_0.gguf,models/tinyllama-q4_0.gguf' },
    pairs: { type: 'string', default: '3' },
    tokens: { type: 'string', short: 'n', default: '48' },
    temp: { type: 'string', default: '0.8,0' },
  },
});

/** A movie record: strings, bounded numbers, enums, nested objects and arrays. */
const SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', maxLength: 40 },
    year: { type: 'integer', minimum: 1900, maximum: 2100 },
    rating: { type: 'number', minimum: 0, maximum: 10 },
    genres: { type: 'array', items: { enum: ['drama', 'comedy', 'horror', 'sci-fi'] }, maxItems: 4 },
    cast: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string', maxLength: 24 }, role: { type: 'string', maxLength: 16 } }, required: ['name', 'role'] },
      maxItems: 3,
    },
    summary: { type: 'string', maxLength: 200 },
  },
  required: ['title', 'year', 'rating', 'genres', 'cast', 'summary'],
};

// The grammar's own CPU time (check, mask, second draw, accept), which the machine's
// noise does not blur: summed over B runs and divided by their tokens.
let grammarMs = 0;
let masks = 0;
const proto = GrammarConstraint.prototype;
for (const name of ['sample', 'accept'] as const) {
  const orig = proto[name] as (...a: unknown[]) => unknown;
  (proto as unknown as Record<string, unknown>)[name] = function (this: GrammarConstraint, ...a: unknown[]) {
    const t = performance.now();
    try {
      return orig.apply(this, a);
    } finally {
      grammarMs += performance.now() - t;
    }
  };
}
const origMask = proto.mask;
proto.mask = function (this: GrammarConstraint) {
  masks++;
  return origMask.call(this);
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function ensure(path: string): Promise<void> {
  if (existsSync(path)) return;
  const m = /(s110m|tinyllama)-([a-z0-9_]+)\.gguf$/.exec(path);
  if (!m) throw new Error(`${path} does not exist (and is not models/<s110m|tinyllama>-<type>.gguf to make)`);
  const vocab = '../shared/models/ggml-vocab-llama-spm.gguf';
  console.error(`making ${path} ...`);
  await makeModel({ out: path, preset: m[1], type: m[2] as never, ...(existsSync(vocab) ? { vocabFile: vocab } : { vocab: 32000 }) });
}

const pairs = Number(v.pairs);
const maxTokens = Number(v.tokens);
for (const path of v.models!.split(',')) {
  await ensure(path);
  const model = await loadModel(path, { contextLength: 512 });
  try {
    const prompt = 'Write a JSON record for a film:';
    const once = async (opts: GenerateOptions) => {
      const g = model.generate(prompt, { maxTokens, seed: 7, ...opts });
      let text = '';
      for await (const t of g) text += t.text;
      const s = await g.stats;
      return { tps: s.decodeTokPerS, n: s.generatedTokens, stop: s.stopReason, text };
    };
    await once({ temperature: 0.8, maxTokens: 8 }); // warm-up: pipelines, caches
    await once({ temperature: 0.8, maxTokens: 8, jsonSchema: SCHEMA });
    for (const temperature of v.temp!.split(',').map(Number)) {
      const a: number[] = [];
      const b: number[] = [];
      const tokens: number[] = [];
      grammarMs = 0;
      masks = 0;
      for (let p = 0; p < pairs; p++) {
        const order = p % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
        for (const side of order) {
          const r = await once(side === 'A' ? { temperature } : { temperature, jsonSchema: SCHEMA });
          (side === 'A' ? a : b).push(r.tps);
          if (side === 'B') {
            tokens.push(r.n);
            JSON.parse(r.stop === 'eos' ? r.text : '{}'); // a finished B run is JSON
          }
        }
      }
      const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
      const nB = tokens.reduce((x, y) => x + y, 0);
      console.log(`${path} temp ${temperature}: without ${fmt(a)} (median ${median(a).toFixed(1)}) | with schema ${fmt(b)} (median ${median(b).toFixed(1)}; ${tokens.join(', ')} tokens) | with/without ${(median(b) / median(a)).toFixed(3)} | grammar CPU ${(grammarMs / nB).toFixed(2)} ms/token, masked second draw on ${((100 * masks) / nB).toFixed(0)}% of tokens`);
    }
  } finally {
    model.dispose();
  }
}
