// The tokenizer of a real model file (stories260K, 512-token SentencePiece) against
// llama.cpp's own prompt ids and generated text for that model.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { hasShared, sharedModel, sharedRef } from '../shared.ts';

describe.skipIf(!hasShared)('stories260K tokenizer vs llama.cpp', () => {
  it('encodes the prompt with BOS and streams the greedy continuation piece by piece', async () => {
    const f = await openGguf(sharedModel('stories260K.gguf'));
    const tc = readConfig(f).tokenizer;
    await f.close();
    if (!tc) throw new Error('no tokenizer in stories260K.gguf');
    const tok = Tokenizer.fromConfig(tc);
    const ref = JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8'));
    expect(tok.encode(ref.prompt)).toEqual(ref.prompt_ids);

    // Generation continues a prompt, so the first piece keeps its space (stripLeadingSpace: false).
    const dec = tok.streamDecoder({ stripLeadingSpace: false });
    const pieces = ref.steps.map((s: { id: number }) => dec.push(s.id));
    expect(pieces).toEqual(ref.steps.map((s: { piece: string }) => s.piece));
    expect(tok.decode(ref.generated_ids, { stripLeadingSpace: false })).toBe(ref.generated_text);
  });
});
