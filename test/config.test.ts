// readConfig refuses hyper-parameters no model can have, naming the key and the
// value in one line, before info or the loader computes anything from them; and
// strings from the file reach no message unescaped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../src/config.ts';
import { GgufError } from '../src/errors.ts';
import { openGguf } from '../src/gguf/reader.ts';
import type { GgufKV } from '../src/gguf/types.ts';
import { kv } from '../src/gguf/writer.ts';
import { checkModel } from '../src/models/llama-tensors.ts';
import { rewriteMeta } from './gguf/remeta.ts';
import { hasShared, sharedModel } from './shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** stories260K with `changes`, read back: the config, or the error readConfig (or checkModel) threw. */
async function configOf(changes: Record<string, GgufKV | null>, check = false) {
  const path = await rewriteMeta(sharedModel('stories260K.gguf'), join(dir, `m${n++}.gguf`), changes);
  const f = await openGguf(path);
  try {
    const c = readConfig(f);
    if (check) checkModel(f, c);
    return c;
  } finally {
    await f.close();
  }
}

describe.skipIf(!hasShared)('readConfig ranges', () => {
  it.each([
    [kv.f32('llama.attention.layer_norm_rms_epsilon', -1), /llama\.attention\.layer_norm_rms_epsilon = -1 is out of range \(must be > 0\)/],
    [kv.f32('llama.attention.layer_norm_rms_epsilon', 0), /layer_norm_rms_epsilon = 0 is out of range/],
    [kv.f32('llama.rope.freq_base', -1), /llama\.rope\.freq_base = -1 is out of range \(must be > 0\)/],
    [kv.f64('llama.vocab_size', -1e30), /llama\.vocab_size = -1e\+30 is out of range \(must be a whole number/],
    [kv.i32('llama.attention.key_length', -8), /llama\.attention\.key_length = -8 is out of range/],
    [kv.i32('llama.attention.value_length', -8), /llama\.attention\.value_length = -8 is out of range/],
    [kv.i32('llama.attention.head_count', -4), /llama\.attention\.head_count = -4 is out of range/],
    [kv.f32('llama.embedding_length', 64.5), /llama\.embedding_length = 64\.5 is out of range/],
    [kv.u64('llama.context_length', 2n ** 40n), /llama\.context_length = 1099511627776 is out of range/],
    [kv.f32('llama.rope.scaling.factor', -4), /llama\.rope\.scaling\.factor = -4 is out of range \(must be >= 0\)/],
    [kv.f32('llama.rope.scaling.attn_factor', -1), /attn_factor = -1 is out of range/],
    [kv.f32('llama.final_logit_softcapping', -30), /final_logit_softcapping = -30 is out of range/],
    [kv.f32('llama.logit_scale', -8), /logit_scale = -8 is out of range/],
    [kv.i32('llama.attention.sliding_window', -1), /sliding_window = -1 is out of range/],
  ])('refuses %o', async (entry, msg) => {
    const e = await configOf({ [entry.key]: entry }).catch((x) => x);
    expect(e).toBeInstanceOf(GgufError);
    expect(e.message).toMatch(msg);
    expect(e.message).toMatch(/the file is corrupt/);
    expect(e.message).not.toContain('\n');
  });

  it('keeps what real files have: defaults, a factor of 0 meaning none, soft-cap 0 meaning off', async () => {
    const c = await configOf({ 'llama.rope.scaling.factor': kv.f32('llama.rope.scaling.factor', 0), 'llama.final_logit_softcapping': kv.f32('llama.final_logit_softcapping', 0) });
    expect(c.ropeScaling.factor).toBe(1);
    expect(c.finalSoftcap).toBe(0);
    expect(c.rmsEps).toBeGreaterThan(0);
    expect(c.ropeTheta).toBe(10000);
  });

  it('escapes a control-laden architecture in every message that names it', async () => {
    const evil = 'llama\x1b]0;pwned\x07\r\nqllm: fake line\x9b2J';
    const e = await configOf({ 'general.architecture': kv.str('general.architecture', evil) }, true).catch((x) => x);
    expect(e).toBeInstanceOf(GgufError);
    expect(e.message).toContain("architecture 'llama\\x1b]0;pwned\\x07\\x0d\\x0aqllm: fake line\\x9b2J' is not supported");
    expect([...e.message].every((ch) => ch >= ' ' && !(ch >= '\x7f' && ch < '\xa0'))).toBe(true);
  });

  it('escapes it in the names of missing keys too', async () => {
    // A model whose keys exist under the real name but whose architecture (with a newline) has none of them.
    const e = await configOf({ 'general.architecture': kv.str('general.architecture', 'x\ny'), 'x\ny.block_count': kv.u32('x\ny.block_count', 1) }).catch((x) => x);
    expect(e).toBeInstanceOf(GgufError);
    expect(e.message).toMatch(/^metadata key x\\x0ay\.embedding_length is missing/);
  });
});
