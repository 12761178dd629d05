// chat() on a real model file splits a reasoning reply (src/reasoning.ts through
// model-api.ts): a random-weight tiny model whose vocabulary carries gpt-oss's
// harmony chat template, or a DeepSeek-R1-style template that opens <think>,
// with a grammar that makes it write the reasoning syntax as text. The streamed
// tokens and the message hold the thinking apart from the answer, and the
// message goes back into the template for the next turn (harmony's refuses
// content with <|channel|> in it).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChatMessage, Generation } from '../src/api.ts';
import { kv, writeGgufToBytes } from '../src/gguf/writer.ts';
import { loadModel, type QllmModel } from '../src/model-api.ts';
import { makeModel } from '../src/synth/make-model.ts';
import { syntheticVocab } from '../src/synth/vocab.ts';
import { getTestEngine } from './gpu/fixture.ts';

const HARMONY = readFileSync(new URL('./models/templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8');
const R1 = "{% for m in messages %}{% if m.role == 'user' %}<｜User｜>{{ m.content }}{% else %}<｜Assistant｜>{{ m.content }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}";

const gpu = !!(await getTestEngine());
const dir = mkdtempSync(join(tmpdir(), 'qllm-reasoning-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny llama with the synthetic vocabulary and this chat template. */
async function withTemplate(name: string, template: string): Promise<QllmModel> {
  const vocab = join(dir, `${name}-vocab.gguf`);
  writeFileSync(vocab, writeGgufToBytes({ kv: [...syntheticVocab(512), kv.str('tokenizer.chat_template', template)], tensors: [] }));
  const path = join(dir, `${name}.gguf`);
  // Room for harmony's system prompt, spelled in the synthetic vocabulary's small pieces (~260 tokens).
  await makeModel({ out: path, preset: 'tiny', type: 'q8_0', seed: 7, vocabFile: vocab, ctx: 1024 });
  return loadModel(path, { contextLength: 1024 });
}

async function drain(gen: Generation) {
  let text = '';
  let reasoning = '';
  for await (const t of gen) {
    text += t.text;
    reasoning += t.reasoning ?? '';
  }
  return { text, reasoning, message: await gen.message };
}

describe.skipIf(!gpu)('chat() splits a reasoning reply on a real model', () => {
  it('harmony: the analysis channel is reasoning, the final channel the answer; the reply goes back into the template', async () => {
    const model = await withTemplate('harmony', HARMONY);
    try {
      const grammar = 'root ::= "<|channel|>analysis<|message|>" [a-z]{3,8} "<|end|><|start|>assistant<|channel|>final<|message|>" [a-z]{3,8}';
      const messages: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
      const r = await drain(model.chat(messages, { grammar, temperature: 0, maxTokens: 120 }));
      expect(r.reasoning).toMatch(/^[a-z]{3,8}$/);
      expect(r.text).toMatch(/^[a-z]{3,8}$/);
      expect(r.message).toEqual({ role: 'assistant', content: r.text, reasoning: r.reasoning });
      // The next turn renders: the template would raise on <|channel|> in the content.
      const next = model.chat([...messages, r.message, { role: 'user', content: 'More' }], { temperature: 0, maxTokens: 2 });
      await drain(next);
      const prompt = model.detokenize(await next.promptIds);
      expect(prompt).toContain(`<|start|>assistant<|channel|>final<|message|>${r.text}<|end|><|start|>user<|message|>More<|end|>`);
      // reasoningFormat 'none': the reply as generated.
      const raw = await drain(model.chat(messages, { grammar, temperature: 0, maxTokens: 120, reasoningFormat: 'none' }));
      expect(raw.text).toBe(`<|channel|>analysis<|message|>${r.reasoning}<|end|><|start|>assistant<|channel|>final<|message|>${r.text}`);
      expect(raw.reasoning).toBe('');
    } finally {
      model.dispose();
    }
  });

  it('<think> opened by the template: the reply starts inside the thinking', async () => {
    const model = await withTemplate('r1', R1);
    try {
      const r = await drain(model.chat([{ role: 'user', content: 'Hi' }], { grammar: 'root ::= [a-z]{3,8} "\\n</think>\\n\\n" [a-z]{3,8}', temperature: 0, maxTokens: 80 }));
      expect(r.reasoning).toMatch(/^[a-z]{3,8}$/);
      expect(r.text).toMatch(/^[a-z]{3,8}$/);
      expect(r.message).toMatchObject({ content: r.text, reasoning: r.reasoning });
    } finally {
      model.dispose();
    }
  });
});
