// chat() with tools on random-weight models (make-model tiny, temperature 1):
//   - no chat template → the generic JSON format;
//   - Mistral Nemo's template over a vocabulary where [TOOL_CALLS] is a control
//     token: the forced-call grammar names it by id, generation prints it as
//     nothing, and the reply (Token.text, Generation.message, the server's
//     tool_calls) gets its text back so the call still parses.
// Every forced call validates against the function's schema.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatOptions, Tool, Token } from '../../src/api.ts';
import { UsageError } from '../../src/errors.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer } from '../../src/serve/server.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { syntheticVocab } from '../../src/synth/vocab.ts';
import { validate } from '../grammar/json-validate.ts';
import { getTestEngine } from '../gpu/fixture.ts';

const NEMO = readFileSync(new URL('./templates/mistralai-Mistral-Nemo-Instruct-2407.jinja', import.meta.url), 'utf8');
const params = { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false };
const tools: Tool[] = [{ type: 'function', function: { name: 'forecast', description: 'Weather forecast.', parameters: params } }];
const ask = [{ role: 'user' as const, content: 'Forecast for Paris?' }];

/** The synthetic vocabulary with [TOOL_CALLS] as its last token (a control token) and Mistral Nemo's template. */
function nemoVocab(path: string): number {
  const base = syntheticVocab(511);
  const arr = (key: string) => {
    const v = base.find((k) => k.key === key)?.value as { values: ArrayLike<number> | string[] } | undefined;
    if (!v) throw new Error(`the synthetic vocabulary has no ${key}`);
    return v.values;
  };
  const tokens = [...(arr('tokenizer.ggml.tokens') as string[]), '[TOOL_CALLS]'];
  const out = base.filter((k) => !['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type'].includes(k.key));
  out.push(
    kv.strArray('tokenizer.ggml.tokens', tokens),
    kv.f32Array('tokenizer.ggml.scores', [...Array.from(arr('tokenizer.ggml.scores') as ArrayLike<number>), 0]),
    kv.i32Array('tokenizer.ggml.token_type', [...Array.from(arr('tokenizer.ggml.token_type') as ArrayLike<number>), 3]),
    kv.str('tokenizer.chat_template', NEMO),
  );
  writeFileSync(path, writeGgufToBytes({ kv: out, tensors: [] }));
  return tokens.length - 1;
}

async function reply(model: QllmModel, opts: ChatOptions): Promise<{ toks: Token[]; message: Awaited<ReturnType<QllmModel['chat']>['message']> }> {
  const g = model.chat(ask, opts);
  const toks: Token[] = [];
  for await (const t of g) toks.push(t);
  return { toks, message: await g.message };
}

const gpu = !!(await getTestEngine());
describe.skipIf(!gpu)('chat() with tools on random-weight models', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-tool-chat-'));
  let plain: QllmModel;
  let nemo: QllmModel;
  let marker: number;
  beforeAll(async () => {
    await makeModel({ out: join(dir, 'plain.gguf'), preset: 'tiny', type: 'q8_0', seed: 7, ctx: 1024 });
    marker = nemoVocab(join(dir, 'nemo-vocab.gguf'));
    await makeModel({ out: join(dir, 'nemo.gguf'), preset: 'tiny', type: 'q8_0', seed: 8, ctx: 1024, vocabFile: join(dir, 'nemo-vocab.gguf') });
    plain = await loadModel(join(dir, 'plain.gguf'), { contextLength: 1024 });
    nemo = await loadModel(join(dir, 'nemo.gguf'), { contextLength: 1024 });
  });
  afterAll(() => {
    plain?.dispose();
    nemo?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no template (generic JSON): toolChoice required gives a valid call as Generation.message, 5 seeds', async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { toks, message } = await reply(plain, { tools, toolChoice: 'required', temperature: 1, seed, maxTokens: 300 });
      expect(toks.map((t) => t.text).join('')).toMatch(/^\{"tool_call": \{"name": "forecast", "arguments": /);
      expect(message.content).toBe('');
      expect(message.toolCalls).toHaveLength(1);
      const call = message.toolCalls?.[0];
      expect(call?.id).toMatch(/^call_/);
      expect([seed, call?.name, validate(JSON.parse(call?.arguments ?? 'null'), params)]).toEqual([seed, 'forecast', '']);
    }
  });

  it('Mistral Nemo: the call starts with the [TOOL_CALLS] control token, and parses with a 9-character id, 5 seeds', async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { toks, message } = await reply(nemo, { tools, toolChoice: { type: 'function', function: { name: 'forecast' } }, temperature: 1, seed, maxTokens: 300 });
      expect([toks[0].tokenId, toks[0].text]).toEqual([marker, '[TOOL_CALLS]']);
      const call = message.toolCalls?.[0];
      expect(call?.id).toMatch(/^[A-Za-z0-9]{9}$/);
      expect([seed, call?.name, validate(JSON.parse(call?.arguments ?? 'null'), params)]).toEqual([seed, 'forecast', '']);
    }
  });

  it('the call goes back into the conversation through the template', async () => {
    const { message } = await reply(nemo, { tools, toolChoice: 'required', temperature: 1, seed: 9, maxTokens: 300 });
    const call = message.toolCalls?.[0] as NonNullable<typeof message.toolCalls>[0];
    const g = nemo.chat([...ask, message, { role: 'tool', toolCallId: call.id, name: call.name, content: '{"temp_c": 21}' }], { tools, maxTokens: 4, temperature: 0 });
    for await (const _ of g) { /* drain */ }
    const prompt = nemo.detokenize(await g.promptIds);
    expect(prompt).toContain(`"id": "${call.id}"}]`);
    expect(prompt).toContain(`[TOOL_RESULTS]{"content": {"temp_c": 21}, "call_id": "${call.id}"}[/TOOL_RESULTS]`);
  });

  it('generic, tool choice auto with a jsonSchema: each reply is a valid call or a response that validates', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
    for (let seed = 1; seed <= 4; seed++) {
      const { message } = await reply(plain, { tools, jsonSchema: schema, temperature: 1, seed, maxTokens: 300 });
      const call = message.toolCalls?.[0];
      const problem = call ? validate(JSON.parse(call.arguments), params) : validate(JSON.parse(message.content), schema);
      expect([seed, problem]).toEqual([seed, '']);
    }
  });

  it('without tools, message is the whole reply', async () => {
    const { toks, message } = await reply(plain, { temperature: 1, seed: 1, maxTokens: 8 });
    expect(message).toEqual({ role: 'assistant', content: toks.map((t) => t.text).join('') });
  });

  it('bad tools, or a grammar beside a forced call, fail at the first next() before the model runs', async () => {
    for (const [opts, re] of [
      [{ tools: [{ type: 'function', function: { name: 'bad name' } }] }, /1 to 64 letters/],
      [{ tools, toolChoice: 'required', grammar: 'root ::= "x"' }, /a grammar cannot be combined with tools/],
      [{ tools, toolChoice: { type: 'function', function: { name: 'nope' } } }, /not among the tools/],
    ] as [unknown, RegExp][]) {
      const g = plain.chat(ask, opts as ChatOptions);
      const e = await g[Symbol.asyncIterator]().next().catch((x) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toMatch(re);
      await expect(g.message).rejects.toBe(e);
    }
  });

  it('qllm serve on the Mistral model: the control-token marker comes back in tool_calls, streamed and not', async () => {
    const srv = createServer(nemo, { port: 0, log: () => {} });
    const client = new OpenAI({ baseURL: `${(await srv.listen()).url}/v1`, apiKey: 'unused', maxRetries: 0 });
    try {
      const body = { model: 'x', messages: ask, tools: tools as OpenAI.ChatCompletionTool[], tool_choice: 'required' as const, temperature: 1, seed: 4, max_tokens: 300 };
      const r = await client.chat.completions.create(body);
      const call = r.choices[0].message.tool_calls?.[0];
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.id).toMatch(/^[A-Za-z0-9]{9}$/);
      expect(validate(JSON.parse(call.function.arguments), params)).toBe('');
      const streamed = await client.chat.completions.stream(body).finalChatCompletion();
      const sc = streamed.choices[0].message.tool_calls?.[0];
      if (sc?.type !== 'function') throw new Error('expected a function call');
      expect(sc.function.arguments).toBe(call.function.arguments); // same seed, same call
      expect(streamed.choices[0].finish_reason).toBe('tool_calls');
    } finally {
      await srv.close();
    }
  });
});
