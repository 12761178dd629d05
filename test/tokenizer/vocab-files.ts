// Reading llama.cpp's vocabulary-only GGUFs and their tokenizer cases from ../shared.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { sharedModel } from '../shared.ts';

export const VOCAB_DIR = sharedModel('vocab');
export const vocabPath = (name: string) => `${VOCAB_DIR}/ggml-vocab-${name}.gguf`;

/** .inp is `case + "\n__ggml_vocab_test__\n"` repeated; .out has one line of ids per case. */
export function loadCases(path: string): { text: string; ids: number[] }[] {
  const inp = readFileSync(`${path}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  expect(inp.pop()).toBe(''); // the file ends with a separator
  const out = readFileSync(`${path}.out`, 'utf8').split('\n');
  expect(out.length).toBeGreaterThanOrEqual(inp.length);
  return inp.map((text, i) => ({ text, ids: out[i].trim() === '' ? [] : out[i].trim().split(/\s+/).map(Number) }));
}

/** The tokenizer as the model loader builds it, plus general.name (Phi-3's rstrip keys on it). */
export async function loadVocab(path: string): Promise<Tokenizer> {
  const f = await openGguf(path);
  try {
    const cfg = readConfig(f);
    if (!cfg.tokenizer) throw new Error(`${path} has no tokenizer`);
    return Tokenizer.fromConfig({ ...cfg.tokenizer, modelName: cfg.name });
  } finally {
    await f.close();
  }
}
