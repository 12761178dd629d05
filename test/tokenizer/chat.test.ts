// Chat templates rendered as llama.cpp renders them in Jinja mode: real-world template
// shapes (Llama-2, ChatML, Zephyr), expectations ported from llama.cpp's
// tests/test-chat-template.cpp (including how it folds a system message into the first
// user turn for templates that have no system role), and the templates the shared
// vocabularies carry (Qwen2, Phi-3, Command-R) plus Llama 3.1's, whose expected text
// came from llama.cpp's own Jinja engine (common/jinja) run on the same inputs.
import { readFileSync } from 'node:fs';
import { Environment } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/api.ts';
import { type TokenizerConfig, readConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { readsSystemContent, renderChat } from '../../src/tokenizer/chat.ts';
import { hasShared } from '../shared.ts';
import { loadVocab, vocabPath } from './vocab-files.ts';

/** A three-token vocabulary whose BOS/EOS texts are `bos`/`eos` ('' = the model has none). */
const tc = (chatTemplate: string | undefined, addBos = true, bos = '<s>', eos = '</s>', addEos = false): TokenizerConfig => ({
  model: 'llama', pre: undefined, tokens: ['<unk>', bos || '<bos>', eos || '<eos>'], scores: new Float32Array(3), tokenTypes: Int32Array.of(2, 3, 3),
  merges: [], bosId: bos ? 1 : undefined, eosId: eos ? 2 : undefined, unkId: 0, padId: undefined, eotId: undefined, addBos, addEos, chatTemplate,
});
const GEN = { addGenerationPrompt: true };

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

// Zephyr's template is written over several lines; transformers and llama.cpp render with trim_blocks.
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
  it('renders a Llama-2 template; the first BOS text is left to the tokenizer when it adds BOS', () => {
    const r = renderChat(tc(LLAMA2), convo, GEN);
    expect(r.text).toBe('[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Name? [/INST]');
    expect(r.usedDefault).toBe(false);
    expect(r.addBos).toBe(true);
    // A model that does not add BOS keeps the template's.
    const keep = renderChat(tc(LLAMA2, false), convo, GEN);
    expect(keep.text.startsWith('<s>[INST] <<SYS>>')).toBe(true);
    expect(keep.addBos).toBe(false);
  });

  it('renders ChatML with and without the generation prompt', () => {
    const two = convo.slice(0, 2);
    const want = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n';
    expect(renderChat(tc(CHATML), two, { addGenerationPrompt: false }).text).toBe(want);
    const r = renderChat(tc(CHATML), two, GEN);
    expect(r.text).toBe(`${want}<|im_start|>assistant\n`);
    expect(r.addBos).toBe(true);
  });

  it('renders a multi-line Zephyr template with block trimming', () => {
    const r = renderChat(tc(ZEPHYR), convo.slice(0, 2), GEN);
    expect(r.text).toBe('<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n');
  });

  it('uses the default transcript template when the model has none', () => {
    const r = renderChat(tc(undefined), convo, GEN);
    expect(r.usedDefault).toBe(true);
    expect(r.text).toBe('Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Name?\nAssistant:');
    expect(r.addBos).toBe(true);
  });

  it('passes the context llama.cpp passes: add_generation_prompt only when true, dates, enable_thinking', () => {
    const t = '{{ add_generation_prompt is defined }}|{{ date_string }}|{{ datetime }}|{{ enable_thinking }}';
    const now = new Date(2026, 0, 5);
    expect(renderChat(tc(t), convo, { addGenerationPrompt: false, now }).text).toBe('false|05 Jan 2026|Jan 05 2026|true');
    expect(renderChat(tc(t), convo, { addGenerationPrompt: true, now }).text).toBe('true|05 Jan 2026|Jan 05 2026|true');
  });

  it('drops a trailing EOS text when the tokenizer appends EOS itself', () => {
    const t = "{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}";
    expect(renderChat(tc(t, false, '<s>', '</s>', true), convo.slice(1, 2), GEN).text).toBe('Hi');
    expect(renderChat(tc(t, false), convo.slice(1, 2), GEN).text).toBe('Hi</s>');
  });

  it('turns template failures into one-line UsageErrors', () => {
    const bad = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] as ChatMessage[];
    expect(() => renderChat(tc(LLAMA2), bad, GEN)).toThrow(/roles must alternate/);
    expect(() => renderChat(tc('{% for x in %}'), convo, GEN)).toThrow(UsageError);
    expect(() => renderChat(tc('{{ messages[0].content.nope() }}'), convo, GEN)).toThrow(UsageError);
    try {
      renderChat(tc('{% for x in %}'), convo, GEN);
    } catch (e) {
      expect((e as Error).message).not.toContain('\n');
    }
  });

  it('rejects bad messages', () => {
    expect(() => renderChat(tc(CHATML), [], GEN)).toThrow(/at least one message/);
    expect(() => renderChat(tc(CHATML), [{ role: 'robot', content: 'x' } as unknown as ChatMessage], GEN)).toThrow(/'system', 'user' or 'assistant'/);
  });
});

// tests/test-chat-template.cpp: its conversation, templates and Jinja-mode expectations
// (format_using_common: no model, so add_bos is false and bos/eos are the case's strings).
const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant' },
  { role: 'user', content: 'Hello' },
  { role: 'assistant', content: 'Hi there' },
  { role: 'user', content: 'Who are you' },
  { role: 'assistant', content: '   I am an assistant   ' },
  { role: 'user', content: 'Another question' },
];
const PHI3_MINI =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}" +
  "{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}";
const GEMMA_7B =
  "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}" +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
const ALPHA_MONARCH =
  "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] + eos_token + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' }}{% endif %}";
const LLAMA3_SIMPLE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
  "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

describe("llama.cpp's test-chat-template expectations (Jinja mode)", () => {
  const render = (t: string, bos = '', eos = '') => renderChat(tc(t, false, bos, eos), CONVERSATION, GEN).text;

  it('teknium/OpenHermes-2.5-Mistral-7B (ChatML)', () => {
    expect(render(CHATML)).toBe(
      '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n' +
        '<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Phi-3-mini: no system role, so the system text leads the first user turn', () => {
    expect(render(PHI3_MINI)).toBe(
      '<|user|>\nYou are a helpful assistant\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n' +
        '<|user|>\nAnother question<|end|>\n<|assistant|>\n',
    );
  });

  it('google/gemma-7b-it: a template that raises on a system message gets it folded too', () => {
    expect(render(GEMMA_7B)).toBe(
      '<start_of_turn>user\nYou are a helpful assistant\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n' +
        '<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  it('mlabonne/AlphaMonarch-7B (BOS/EOS texts in every turn)', () => {
    expect(render(ALPHA_MONARCH, '<s>', '</s>')).toBe(
      '<s>system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi there</s>\n<s>user\nWho are you</s>\n<s>assistant\n   I am an assistant   </s>\n' +
        '<s>user\nAnother question</s>\n<s>assistant\n',
    );
  });

  it('Llama-3 (trim filter)', () => {
    expect(render(LLAMA3_SIMPLE)).toBe(
      '<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('decides system support the way the caps probe does: by reading the content, not printing it', () => {
    expect(readsSystemContent(CHATML)).toBe(true);
    expect(readsSystemContent(PHI3_MINI)).toBe(false);
    expect(readsSystemContent(GEMMA_7B)).toBe(false);
    // Tested but never printed still counts as read (bofenghuang/vigogne-2-70b-chat is not folded).
    expect(readsSystemContent("{% if 'x' in messages[0]['content'] %}X{% endif %}{{ messages[1].content }}")).toBe(true);
    expect(readsSystemContent('{% for m in messages %}{{ m | tojson }}{% endfor %}')).toBe(true);
    const set = Environment.prototype.set;
    readsSystemContent('{{ messages[1].content }} uncached');
    expect(Environment.prototype.set).toBe(set); // the probe put the library back
    // A lone system message with nowhere to go is dropped, as llama.cpp does.
    expect(renderChat(tc(PHI3_MINI, false, ''), CONVERSATION.slice(0, 1), GEN).text).toBe('');
  });
});

const LLAMA31 = readFileSync(new URL('./templates/meta-llama-Llama-3.1-8B-Instruct.jinja', import.meta.url), 'utf8');

describe('Llama 3.1 template (models/templates in llama.cpp)', () => {
  // A real Llama 3.1 GGUF: BOS <|begin_of_text|> added by the tokenizer, EOS <|eot_id|>.
  const llama31 = tc(LLAMA31, true, '<|begin_of_text|>', '<|eot_id|>');
  const now = new Date(2026, 0, 1);

  it('renders the system turn with the cutting-knowledge header and today\'s date', () => {
    const r = renderChat(llama31, CONVERSATION, { ...GEN, now });
    expect(r.text).toBe(
      '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2026\n\nYou are a helpful assistant<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(r.addBos).toBe(true);
  });

  it('writes an empty system turn when there is no system message', () => {
    expect(renderChat(llama31, CONVERSATION.slice(1, 3), { ...GEN, now }).text).toBe(
      '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2026\n\n<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });
});

/** The shared vocabulary's own tokenizer config (template, BOS/EOS, add_bos). */
async function vocabConfig(name: string): Promise<TokenizerConfig> {
  const f = await openGguf(vocabPath(name));
  try {
    return readConfig(f).tokenizer!;
  } finally {
    await f.close();
  }
}

describe.skipIf(!hasShared)('templates carried by the shared vocabularies', () => {
  it('qwen2: ChatML with a default system turn when none is given', async () => {
    const c = await vocabConfig('qwen2');
    expect(renderChat(c, CONVERSATION, GEN).text).toBe(
      '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n' +
        '<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n',
    );
    const r = renderChat(c, [{ role: 'user', content: 'Hello' }], GEN);
    expect(r.text).toBe('<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
    expect(r.addBos).toBe(false);
    const tok = await loadVocab(vocabPath('qwen2'));
    expect(tok.encode(r.text, { addBos: r.addBos }).filter((id) => tok.isEog(id))).toEqual([151645, 151645]); // <|im_end|> x2
  });

  it('phi-3: system folded into the first user turn; BOS from the tokenizer, newlines eaten by rstrip', async () => {
    const c = await vocabConfig('phi-3');
    const r = renderChat(c, CONVERSATION, GEN);
    expect(r.text).toBe(
      '<|user|>\nYou are a helpful assistant\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n' +
        '<|user|>\nAnother question<|end|>\n<|assistant|>\n',
    );
    expect(r.addBos).toBe(true);
    const tok = await loadVocab(vocabPath('phi-3'));
    const ids = tok.encode(renderChat(c, [{ role: 'user', content: 'Hello' }], GEN).text, { addBos: r.addBos });
    expect(ids).toEqual([1, 32010, 15043, 32007, 32001]); // <s> <|user|> ▁Hello <|end|> <|assistant|>, as llama.cpp
  });

  it('command-r: system turn, stripped contents, BOS from the tokenizer', async () => {
    const c = await vocabConfig('command-r');
    const r = renderChat(c, CONVERSATION, GEN);
    expect(r.text).toBe(
      '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|>' +
        '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you<|END_OF_TURN_TOKEN|>' +
        '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|>' +
        '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>',
    );
    expect(r.addBos).toBe(true);
    expect(() => renderChat(c, [CONVERSATION[1], CONVERSATION[3]], GEN)).toThrow(/roles must alternate/);
  });
});
