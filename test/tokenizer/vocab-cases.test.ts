// Every vocabulary in ../shared/models/vocab/ against llama.cpp's own tokenizer cases
// (ggml-vocab-*.gguf.inp/.out, no BOS), plus a byte-exact round trip of each case. The
// folder is listed, not named, so a vocabulary added there is covered automatically;
// the end-of-generation sets are checked in special.test.ts.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasShared } from '../shared.ts';
import { VOCAB_DIR, loadCases, loadVocab } from './vocab-files.ts';

const FILES = hasShared ? readdirSync(VOCAB_DIR).filter((f) => f.endsWith('.gguf')).sort() : [];

describe.skipIf(!hasShared)('llama.cpp vocabulary cases', () => {
  it('finds the vocabularies the shared README lists', () => {
    for (const v of ['llama-bpe', 'qwen2', 'command-r', 'phi-3', 'gpt-2', 'falcon', 'deepseek-llm', 'deepseek-coder', 'mpt', 'starcoder', 'refact']) {
      expect(FILES).toContain(`ggml-vocab-${v}.gguf`);
    }
  });

  for (const file of FILES) {
    it(`${file}: every .inp case gives llama.cpp's ids and decodes back byte for byte`, async () => {
      const path = join(VOCAB_DIR, file);
      const tok = await loadVocab(path);
      const cases = loadCases(path);
      expect(cases.length).toBeGreaterThan(0);
      const failures = cases
        .map((c) => ({ text: c.text, want: c.ids, got: tok.encode(c.text, { addBos: false }) }))
        .filter((r) => JSON.stringify(r.want) !== JSON.stringify(r.got));
      expect(failures).toEqual([]);
      for (const c of cases) expect(tok.decode(c.ids)).toBe(c.text);
    }, 60_000);
  }
});
