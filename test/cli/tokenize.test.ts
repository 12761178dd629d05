// `qllm tokenize` end to end: the text as an argument or, without one, from stdin.
import { describe, expect, it } from 'vitest';
import { hasShared, sharedModel } from '../shared.ts';
import { qllm, shell } from './helpers.ts';

describe.skipIf(!hasShared)('qllm tokenize', () => {
  const model = sharedModel('stories260K.gguf');

  it('reads the text from stdin when none is given, with the same ids as an argument', async () => {
    const arg = await qllm(['tokenize', model, 'Hello world']);
    expect(arg.code, arg.stderr).toBe(0);
    expect(arg.stdout.trim()).toMatch(/^1( \d+)+$/); // BOS, then the text
    const piped = await shell(`printf 'Hello world' | qllm tokenize '${model}'`);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toBe(arg.stdout);
  });

  it('says how to give the text when stdin is empty', async () => {
    const r = await shell(`qllm tokenize '${model}' </dev/null`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("qllm: no text: pass it after the model (qllm tokenize model.gguf 'Hello') or pipe it in");
  });
});
