// The official `openai` client drives tool calling against `qllm serve`:
//   - over the fake model (Qwen 2.5's template, scripted replies): the whole loop
//     request → tool_calls → tool result → answer, by hand, with the client's
//     streaming helper, and with its runTools() runner;
//   - over a random-weight model (make-model tiny, temperature 1): tool_choice
//     'required' yields a call whose arguments validate, seed after seed, in the
//     generic format (no template) and in Qwen's <tool_call> format; and a
//     response_format json_schema reply validates.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { templateOf } from '../../src/serve/model-meta.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { makeModel } from '../../src/synth/make-model.ts';
import { validate } from '../grammar/json-validate.ts';
import { getTestEngine } from '../gpu/fixture.ts';
import { startFake } from './helpers.ts';
import { qwenTemplate, script, WEATHER } from './tool-fixtures.ts';

const tools = [WEATHER] as unknown as ChatCompletionTool[];

describe('openai client: a tool-calling loop against qllm serve (fake model)', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  let client: OpenAI;
  beforeAll(async () => {
    s = await startFake({ meta: { template: qwenTemplate() } }, { delayMs: 1, script });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => s.close());

  it('request → tool_calls → tool result → answer', async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.chat.completions.create({ model: 'm', messages, tools });
    const msg = first.choices[0].message;
    expect(first.choices[0].finish_reason).toBe('tool_calls');
    const call = msg.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments);
    messages.push(msg, { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ city: args.city, temp_c: 21 }) });
    const second = await client.chat.completions.create({ model: 'm', messages, tools });
    expect(second.choices[0].message.content).toBe('It is 21 °C in Paris.');
    expect(second.choices[0].finish_reason).toBe('stop');
  });

  it('the streaming helper assembles the streamed call', async () => {
    const stream = client.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'Explain first' }], tools });
    const final = await stream.finalChatCompletion();
    const m = final.choices[0].message;
    expect(m.content).toBe('Let me check.');
    expect(m.tool_calls?.map((c) => (c.type === 'function' ? [c.function.name, JSON.parse(c.function.arguments)] : null))).toEqual([['get_weather', { city: 'Paris' }]]);
    expect(final.choices[0].finish_reason).toBe('tool_calls');
  });

  const weatherTool = (seen: unknown[]) => ({
    type: 'function' as const,
    function: { name: 'get_weather', description: WEATHER.function.description, parameters: WEATHER.function.parameters as unknown as Record<string, unknown>, parse: JSON.parse, function: (a: unknown) => { seen.push(a); return { temp_c: 21 }; } },
  });

  it('runTools() runs the loop by itself', async () => {
    const seen: unknown[] = [];
    const runner = client.chat.completions.runTools({ model: 'm', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool(seen)] });
    expect(await runner.finalContent()).toBe('It is 21 °C in Paris.');
    expect(seen).toEqual([{ city: 'Paris' }]);
  });

  it('runTools() runs the loop by itself, streaming', async () => {
    const seen: unknown[] = [];
    const runner = client.chat.completions.runTools({ model: 'm', stream: true, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool(seen)] });
    expect(await runner.finalContent()).toBe('It is 21 °C in Paris.');
    expect(seen).toEqual([{ city: 'Paris' }]);
  });
});

const gpu = !!(await getTestEngine());
describe.skipIf(!gpu)('openai client against a random-weight model: forced calls and response_format always validate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-tools-'));
  let model: QllmModel;
  const servers: QllmServer[] = [];
  const clients: Record<string, OpenAI> = {};
  const params = {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 }, units: { enum: ['c', 'f'] } },
    required: ['city', 'days'], additionalProperties: false,
  };
  const forecast = [{ type: 'function', function: { name: 'forecast', description: 'Weather forecast.', parameters: params } }] as ChatCompletionTool[];
  beforeAll(async () => {
    const path = join(dir, 'tiny.gguf');
    await makeModel({ out: path, preset: 'tiny', type: 'q8_0', seed: 5, ctx: 1024 });
    model = await loadModel(path, { contextLength: 1024 });
    const qwen = { ...model.config.tokenizer!, chatTemplate: qwenTemplate().source };
    // No template (the generic JSON format), and Qwen 2.5's (<tool_call>).
    for (const [name, meta] of [['generic', {}], ['hermes', { template: templateOf(qwen) }]] as const) {
      const srv = createServer(model, { port: 0, log: () => {}, meta });
      servers.push(srv);
      clients[name] = new OpenAI({ baseURL: `${(await srv.listen()).url}/v1`, apiKey: 'unused', maxRetries: 0 });
    }
  });
  afterAll(async () => {
    for (const srv of servers) await srv.close();
    model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const format of ['generic', 'hermes']) {
    it(`${format}: tool_choice required at temperature 1 gives a valid call, 10 seeds out of 10`, async () => {
      for (let seed = 1; seed <= 10; seed++) {
        const r = await clients[format].chat.completions.create({
          model: 'tiny', messages: [{ role: 'user', content: 'Forecast for Paris?' }], tools: forecast, tool_choice: 'required', temperature: 1, seed, max_tokens: 300,
        });
        const c = r.choices[0];
        const call = c.message.tool_calls?.[0];
        expect([seed, c.finish_reason, c.message.tool_calls?.length]).toEqual([seed, 'tool_calls', 1]);
        if (call?.type !== 'function') throw new Error('expected a function call');
        expect(call.function.name).toBe('forecast');
        expect([seed, validate(JSON.parse(call.function.arguments), params)]).toEqual([seed, '']);
      }
    });
  }

  it('a named function, streamed: the call arrives in deltas and validates', async () => {
    const stream = clients.hermes.chat.completions.stream({
      model: 'tiny', messages: [{ role: 'user', content: 'Forecast?' }], tools: forecast, tool_choice: { type: 'function', function: { name: 'forecast' } }, temperature: 1, seed: 3, max_tokens: 300,
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0].message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(validate(JSON.parse(call.function.arguments), params)).toBe('');
  });

  it('response_format json_schema: 20 seeded temperature-1 replies all validate against a strict schema', async () => {
    const schema = {
      type: 'object',
      properties: {
        answer: { type: 'string', maxLength: 20 },
        score: { type: 'number', minimum: 0, maximum: 1 },
        mood: { enum: ['happy', 'sad', 'neutral'] },
        tags: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 1, maxItems: 3 },
        count: { type: 'integer', minimum: -5, maximum: 40 },
      },
      required: ['answer', 'score', 'mood', 'tags', 'count'],
      additionalProperties: false,
    };
    for (let seed = 1; seed <= 20; seed++) {
      const r = await clients.generic.chat.completions.create({
        model: 'tiny', messages: [{ role: 'user', content: 'Rate this.' }], temperature: 1, seed, max_tokens: 300,
        response_format: { type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } },
      });
      expect([seed, r.choices[0].finish_reason]).toEqual([seed, 'stop']);
      expect([seed, validate(JSON.parse(r.choices[0].message.content ?? ''), schema)]).toEqual([seed, '']);
    }
  });
});
