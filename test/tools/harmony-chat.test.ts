// chat() with tools on a real (random-weight) model whose vocabulary carries
// gpt-oss's special tokens and chat template: the tiny synthetic vocabulary plus
// <|start|> <|channel|> <|message|> <|constrain|> <|end|> (user-defined: printed)
// and <|call|> <|return|> (end of generation), as o200k_harmony has them. A
// grammar makes the model write a harmony call; chat() returns it as
// Generation.message.toolCalls with the analysis as reasoning, and the message
// goes back through the template with the tool's result. A forced call
// (toolChoice required) runs under the harmony grammar on this vocabulary.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage, ChatOptions, Tool, Token } from '../../src/api.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { syntheticVocab } from '../../src/synth/vocab.ts';
import { getTestEngine } from '../gpu/fixture.ts';

const HARMONY = readFileSync(new URL('../models/templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8');
const SPECIAL: [string, number][] = [['<|start|>', 4], ['<|channel|>', 4], ['<|message|>', 4], ['<|constrain|>', 4], ['<|end|>', 4], ['<|call|>', 3], ['<|return|>', 3]];
/** <|call|>'s id: second to last. */
const CALL_ID = 512 - 2;
const params = { type: 'object', properties: { city: { type: 'string', maxLength: 8 } }, required: ['city'] };
const tools: Tool[] = [{ type: 'function', function: { name: 'forecast', description: 'Weather forecast.', parameters: params } }];
const ask: ChatMessage[] = [{ role: 'user', content: 'Forecast for Paris?' }];

/** The synthetic vocabulary with harmony's special tokens at the end, and gpt-oss's template. */
function harmonyVocab(path: string): void {
  const base = syntheticVocab(512 - SPECIAL.length);
  const arr = (key: string) => {
    const v = base.find((k) => k.key === key)?.value as { values: ArrayLike<number> | string[] } | undefined;
    if (!v) throw new Error(`the synthetic vocabulary has no ${key}`);
    return v.values;
  };
  const out = base.filter((k) => !['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type'].includes(k.key));
  out.push(
    kv.strArray('tokenizer.ggml.tokens', [...(arr('tokenizer.ggml.tokens') as string[]), ...SPECIAL.map(([t]) => t)]),
    kv.f32Array('tokenizer.ggml.scores', [...Array.from(arr('tokenizer.ggml.scores') as ArrayLike<number>), ...SPECIAL.map(() => 0)]),
    kv.i32Array('tokenizer.ggml.token_type', [...Array.from(arr('tokenizer.ggml.token_type') as ArrayLike<number>), ...SPECIAL.map(([, type]) => type)]),
    kv.str('tokenizer.chat_template', HARMONY),
  );
  writeFileSync(path, writeGgufToBytes({ kv: out, tensors: [] }));
}

async function reply(model: QllmModel, messages: ChatMessage[], opts: ChatOptions) {
  const g = model.chat(messages, opts);
  const toks: Token[] = [];
  for await (const t of g) toks.push(t);
  const ids = await g.promptIds;
  return { toks, message: await g.message, stats: await g.stats, ids, prompt: model.detokenize(ids) };
}

const gpu = !!(await getTestEngine());
describe.skipIf(!gpu)('chat() with tools on a harmony (gpt-oss) vocabulary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-harmony-chat-'));
  let model: QllmModel;
  beforeAll(async () => {
    harmonyVocab(join(dir, 'vocab.gguf'));
    // Room for harmony's system and developer messages in the synthetic vocabulary's small pieces.
    await makeModel({ out: join(dir, 'm.gguf'), preset: 'tiny', type: 'q8_0', seed: 11, ctx: 1024, vocabFile: join(dir, 'vocab.gguf') });
    model = await loadModel(join(dir, 'm.gguf'), { contextLength: 1024 });
  });
  afterAll(() => {
    model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns the call as message.toolCalls, the analysis as reasoning; the call and its result render back as harmony', async () => {
    const grammar = 'root ::= "<|channel|>analysis<|message|>" [a-z]{3,8} "<|end|><|start|>assistant<|channel|>commentary to=functions.forecast <|constrain|>json<|message|>{\\"city\\": \\"" [a-z]{2,6} "\\"}"';
    const r = await reply(model, ask, { tools, grammar, temperature: 0, maxTokens: 120 });
    expect(r.prompt).toContain('type forecast = (_: {\ncity: string,\n}) => any;');
    expect(r.stats.stopReason).toBe('eos');
    const reasoning = r.toks.map((t) => t.reasoning ?? '').join('');
    expect(reasoning).toMatch(/^[a-z]{3,8}$/);
    expect(r.message).toMatchObject({ role: 'assistant', content: '', reasoning, toolCalls: [{ name: 'forecast' }] });
    const call = r.message.toolCalls?.[0] as NonNullable<typeof r.message.toolCalls>[0];
    expect(call.arguments).toMatch(/^\{"city": "[a-z]{2,6}"\}$/);
    expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    // Token.text carries the call as the splitter hands it on (as other formats' markup stays in the tokens).
    expect(r.toks.map((t) => t.text).join('')).toBe(`<|start|>assistant<|channel|>commentary to=functions.forecast <|constrain|>json<|message|>${call.arguments}`);
    const next = await reply(model, [...ask, r.message, { role: 'tool', toolCallId: call.id, content: 'sunny' }], { tools, temperature: 0, maxTokens: 2 });
    // <|call|> is a control token: in the prompt's ids, printed as nothing.
    expect(next.prompt).toContain(`<|start|>user<|message|>Forecast for Paris?<|end|><|start|>assistant<|channel|>analysis<|message|>${reasoning}<|end|>`
      + `<|start|>assistant to=functions.forecast<|channel|>commentary json<|message|>${call.arguments}`
      + '<|start|>functions.forecast to=assistant<|channel|>commentary<|message|>"sunny"<|end|><|start|>assistant');
    expect(next.ids.filter((id) => id === CALL_ID)).toHaveLength(1);
  });

  it('reasoningFormat none: the raw reply, the call still read', async () => {
    const grammar = 'root ::= " to=functions.forecast<|channel|>commentary json<|message|>{\\"city\\": \\"" [a-z]{2,6} "\\"}"';
    const r = await reply(model, ask, { tools, grammar, temperature: 0, maxTokens: 60, reasoningFormat: 'none' });
    expect(r.message.content).toBe('');
    expect(r.message.toolCalls?.map((c) => c.name)).toEqual(['forecast']);
    expect(r.message.reasoning).toBeUndefined();
  });

  it('toolChoice required runs under the harmony call grammar: every reply that ends is one valid call, 8 seeds', async () => {
    let ended = 0;
    for (let seed = 1; seed <= 8; seed++) {
      // (A random model may think on in the analysis channel, which the grammar leaves free, past maxTokens.)
      const r = await reply(model, ask, { tools, toolChoice: 'required', temperature: 1, seed, maxTokens: 80 });
      if (r.stats.stopReason !== 'eos') continue;
      ended++;
      expect([seed, r.message.content, r.message.toolCalls?.map((c) => c.name)]).toEqual([seed, '', ['forecast']]);
      expect(typeof JSON.parse(r.message.toolCalls?.[0].arguments ?? 'null').city).toBe('string');
    }
    expect(ended).toBeGreaterThan(0);
  });
});
