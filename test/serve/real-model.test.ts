// `qllm serve` over the real stories260K model (../shared) with the official
// openai client: streaming chat works, and temperature 0 gives the same text as
// `qllm run --temp 0` for the same prompt, and as model.chat() for the same
// messages (same template).
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { qllm } from '../cli/helpers.ts';
import { hasShared, sharedModel } from '../shared.ts';

describe.skipIf(!hasShared)('qllm serve on stories260K with the openai client', () => {
  let model: QllmModel;
  let srv: QllmServer;
  let client: OpenAI;
  beforeAll(async () => {
    model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 512 });
    srv = createServer(model, { port: 0, log: () => {} });
    const { url } = await srv.listen();
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await srv?.close();
    model?.dispose();
  });

  it('streams a chat reply whose text equals model.chat at temperature 0', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story about a cat.' }];
    const stream = await client.chat.completions.create({ model: model.info.name, messages, stream: true, temperature: 0, max_tokens: 24 });
    let text = '';
    let chunks = 0;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      chunks++;
    }
    expect(chunks).toBeGreaterThan(3);
    let direct = '';
    for await (const t of model.chat(messages, { temperature: 0, maxTokens: 24 })) direct += t.text;
    expect(text).toBe(direct);
    expect(text.length).toBeGreaterThan(10);
  });

  it('completes "Once upon a time" at temperature 0 exactly as qllm run --temp 0', async () => {
    const r = await client.completions.create({ model: model.info.name, prompt: 'Once upon a time', temperature: 0, max_tokens: 32 });
    const cli = JSON.parse((await qllm(['run', sharedModel('stories260K.gguf'), '-p', 'Once upon a time', '-n', '32', '--temp', '0', '--json', '--no-stats'])).stdout);
    expect(r.choices[0].text).toBe(cli.text);
    expect(r.usage?.completion_tokens).toBe(32);
  });
});
