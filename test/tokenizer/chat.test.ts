// Chat templates: real-world template shapes (Llama-2, ChatML, Zephyr) rendered with a
// short conversation must give exactly the text those models were trained on.
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/api.ts';
import type { TokenizerConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { renderChat } from '../../src/tokenizer/chat.ts';

const tc = (chatTemplate: string | undefined, addBos = true): TokenizerConfig => ({
  model: 'llama', pre: undefined, tokens: ['<unk>', '<s>', '</s>'], scores: new Float32Array(3), tokenTypes: Int32Array.of(2, 3, 3),
  merges: [], bosId: 1, eosId: 2, unkId: 0, padId: undefined, eotId: undefined, addBos, addEos: false, chatTemplate,
});

const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}' +
  "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Zephyr's template is written over several lines; transformers renders with trim_blocks.
const ZEPHYR = `{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}`;

const convo: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'Name?' },
];

describe('renderChat', () => {
  it('renders a Llama-2 template (system folded into the first turn, BOS per turn)', () => {
    const r = renderChat(tc(LLAMA2), convo, { addGenerationPrompt: true });
    expect(r.text).toBe('<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Name? [/INST]');
    expect(r.usedDefault).toBe(false);
    expect(r.addBos).toBe(false); // the template wrote <s> itself
  });

  it('renders ChatML with and without the generation prompt', () => {
    const two = convo.slice(0, 2);
    const want = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n';
    expect(renderChat(tc(CHATML), two, { addGenerationPrompt: false }).text).toBe(want);
    const r = renderChat(tc(CHATML), two, { addGenerationPrompt: true });
    expect(r.text).toBe(`${want}<|im_start|>assistant\n`);
    expect(r.addBos).toBe(true);
  });

  it('renders a multi-line Zephyr template with block trimming', () => {
    const r = renderChat(tc(ZEPHYR), convo.slice(0, 2), { addGenerationPrompt: true });
    expect(r.text).toBe('<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n');
  });

  it('uses the default transcript template when the model has none', () => {
    const r = renderChat(tc(undefined), convo, { addGenerationPrompt: true });
    expect(r.usedDefault).toBe(true);
    expect(r.text).toBe('Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Name?\nAssistant:');
    expect(r.addBos).toBe(true);
  });

  it('turns template failures into one-line UsageErrors', () => {
    const bad = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] as ChatMessage[];
    expect(() => renderChat(tc(LLAMA2), bad, { addGenerationPrompt: true })).toThrow(/roles must alternate/);
    expect(() => renderChat(tc('{% for x in %}'), convo, { addGenerationPrompt: true })).toThrow(UsageError);
    expect(() => renderChat(tc('{{ messages[0].content.nope() }}'), convo, { addGenerationPrompt: true })).toThrow(UsageError);
    try {
      renderChat(tc('{% for x in %}'), convo, { addGenerationPrompt: true });
    } catch (e) {
      expect((e as Error).message).not.toContain('\n');
    }
  });

  it('rejects bad messages', () => {
    expect(() => renderChat(tc(CHATML), [], { addGenerationPrompt: true })).toThrow(/at least one message/);
    expect(() => renderChat(tc(CHATML), [{ role: 'robot', content: 'x' } as unknown as ChatMessage], { addGenerationPrompt: true })).toThrow(/'system', 'user' or 'assistant'/);
  });
});
