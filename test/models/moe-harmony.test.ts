// gpt-oss's chat template (OpenAI's harmony format, as llama.cpp ships it in
// models/templates/openai-gpt-oss-120b.jinja and the GGUF carries it) renders
// through qllm's template engine: the system prompt with the date and
// reasoning effort, a system message as developer instructions, past
// assistant turns on the final channel, and the generation prompt.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { renderChat } from '../../src/tokenizer/chat.ts';

const HARMONY = readFileSync(new URL('./templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8');
const tc = { model: 'gpt2', tokens: ['<|startoftext|>', '<|return|>'], bosId: 0, eosId: 1, chatTemplate: HARMONY, addBos: false, merges: [], scores: new Float32Array(0), tokenTypes: new Int32Array(0) } as unknown as TokenizerConfig;

describe('gpt-oss harmony chat template', () => {
  it('renders a conversation as llama.cpp would', () => {
    const r = renderChat(tc, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi!' },
      { role: 'user', content: 'Bye' },
    ], { addGenerationPrompt: true, now: new Date(2026, 11, 3, 12) });
    expect(r.usedDefault).toBe(false);
    expect(r.text).toBe(
      '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: 2026-12-03\n\n' +
        'Reasoning: medium\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>' +
        '<|start|>developer<|message|># Instructions\n\nBe brief.\n\n<|end|>' +
        '<|start|>user<|message|>Hello<|end|><|start|>assistant<|channel|>final<|message|>Hi!<|end|>' +
        '<|start|>user<|message|>Bye<|end|><|start|>assistant',
    );
  });
});
