// The reasoning splitter (src/reasoning.ts): harmony channels and <think> blocks,
// whole and streamed in pieces cut at every offset, which must give the same split.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../src/config.ts';
import { renderChat } from '../src/tokenizer/chat.ts';
import { mergeDeltas, ReasoningParser, type ReasoningSyntax, reasoningSyntax, splitReasoning, thinkingOpen } from '../src/reasoning.ts';

const HARMONY = '<|channel|>analysis<|message|>User says hi. Reply briefly.<|end|><|start|>assistant<|channel|>final<|message|>Hello! How can I help?';

/** The text pushed in the given pieces. */
function streamed(syntax: ReasoningSyntax, pieces: string[], open = false, calls?: ReadonlySet<string>) {
  const p = new ReasoningParser(syntax, { open, calls });
  const ds = pieces.flatMap((x) => p.push(x));
  return mergeDeltas([...ds, ...p.finish()]);
}

/** Every cut into two pieces, every cut into three (for short texts), and one character at a time. */
function expectSameAtEverySplit(syntax: ReasoningSyntax, text: string, want: { reasoning: string; content: string }, open = false, calls?: ReadonlySet<string>) {
  expect(splitReasoning(syntax, text, { open, calls })).toEqual(want);
  const n = text.length;
  for (let i = 0; i <= n; i++) expect(streamed(syntax, [text.slice(0, i), text.slice(i)], open, calls), `cut at ${i}`).toEqual(want);
  if (n <= 120) {
    for (let i = 0; i <= n; i++) for (let j = i; j <= n; j++) {
      expect(streamed(syntax, [text.slice(0, i), text.slice(i, j), text.slice(j)], open, calls), `cuts at ${i}, ${j}`).toEqual(want);
    }
  }
  expect(streamed(syntax, [...text], open, calls)).toEqual(want);
}

describe('harmony (gpt-oss)', () => {
  it('puts the analysis channel in reasoning and the final channel in content, at every split', () => {
    expectSameAtEverySplit('harmony', HARMONY, { reasoning: 'User says hi. Reply briefly.', content: 'Hello! How can I help?' });
  });

  it('streams as it goes: content is not held back to the end', () => {
    const p = new ReasoningParser('harmony');
    const got: string[] = [];
    for (const ch of HARMONY) for (const d of p.push(ch)) if (d.content) got.push(d.content);
    expect(got.join('')).toBe('Hello! How can I help?'); // every character as it came: none could start a tag
  });

  it('concatenates several analysis messages; a commentary preamble is content; a tool call is dropped', () => {
    const text = '<|channel|>analysis<|message|>First.<|end|><|start|>assistant<|channel|>commentary<|message|>Checking the weather.<|end|>'
      + '<|start|>assistant<|channel|>analysis<|message|> Second.<|end|>'
      + '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}';
    expectSameAtEverySplit('harmony', text, { reasoning: 'First. Second.', content: 'Checking the weather.' });
    // The recipient in the role header, as gpt-oss also writes it.
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>Call it.<|end|><|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}')).toEqual({ reasoning: 'Call it.', content: '' });
  });

  it('reads a final message with a stray commentary prefix or a constraint as content', () => {
    expect(splitReasoning('harmony', '<|channel|>commentary<|channel|>final<|message|>Hi')).toEqual({ reasoning: '', content: 'Hi' });
    expect(splitReasoning('harmony', '<|channel|>final <|constrain|>json<|message|>{"a":1}')).toEqual({ reasoning: '', content: '{"a":1}' });
  });

  it('keeps a reply cut off while thinking as reasoning, and a header cut off as nothing', () => {
    expectSameAtEverySplit('harmony', '<|channel|>analysis<|message|>Still thinking', { reasoning: 'Still thinking', content: '' });
    expectSameAtEverySplit('harmony', '<|channel|>analysis<|message|>Done.<|end|><|start|>assistant<|chan', { reasoning: 'Done.', content: '' });
  });

  it('shows text that is not harmony at all as content', () => {
    expectSameAtEverySplit('harmony', 'Just an answer <b>with</b> <|tags|> inside', { reasoning: '', content: 'Just an answer <b>with</b> <|tags|> inside' });
    expectSameAtEverySplit('harmony', '', { reasoning: '', content: '' });
  });

  it('reads `<|channel|>commentary to=assistant` (a stray prefix gpt-oss writes) as no recipient (llama.cpp\'s edge cases)', () => {
    expectSameAtEverySplit('harmony', "<|channel|>commentary to=assistant<|channel|>analysis<|message|>I'm\nthinking<|end|><|start|>assistant<|channel|>final<|message|>Hello", { reasoning: "I'm\nthinking", content: 'Hello' });
    expectSameAtEverySplit('harmony', "<|channel|>analysis<|message|>I'm\nthinking<|end|><|start|>assistant<|channel|>commentary to=assistant<|channel|>final<|message|>Hello", { reasoning: "I'm\nthinking", content: 'Hello' });
  });

  it('drops a call whose recipient opens the reply (right after the prompt\'s <|start|>assistant), at every split', () => {
    expectSameAtEverySplit('harmony', ' to=functions.f<|channel|>commentary json<|message|>{"a": 1}', { reasoning: '', content: '' });
    expectSameAtEverySplit('harmony', '<|channel|>analysis<|message|>Hm.<|end|><|start|>assistant to=python<|channel|>analysis<|message|>print(1)<|call|>', { reasoning: 'Hm.', content: '' });
    // Text that only starts like a recipient is an answer.
    expectSameAtEverySplit('harmony', 'today', { reasoning: '', content: 'today' });
  });

  it('with `calls`, hands a declared function\'s call on as content in one harmony form, at every split', () => {
    const calls = new Set(['get_weather']);
    const form = '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}';
    const text = '<|channel|>analysis<|message|>Weather.<|end|><|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>'
      + '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}';
    expectSameAtEverySplit('harmony', text, { reasoning: 'Weather.', content: `Checking.${form}` }, false, calls);
    // The first message's header gets the role header the prompt held; <|call|>, <|end|> or the next <|start|> end the call as <|call|>.
    expectSameAtEverySplit('harmony', ' to=functions.get_weather<|channel|>analysis<|message|>{}<|call|>', { reasoning: '', content: '<|start|>assistant to=functions.get_weather<|channel|>analysis<|message|>{}<|call|>' }, false, calls);
    expectSameAtEverySplit('harmony', '<|channel|>commentary to=functions.get_weather<|message|>{}<|end|><|start|>assistant<|channel|>final<|message|>Hi', { reasoning: '', content: '<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{}<|call|>Hi' }, false, calls);
    // Undeclared functions and other recipients are dropped still.
    expect(splitReasoning('harmony', '<|channel|>commentary to=functions.rm_rf<|message|>{}<|end|><|start|>assistant to=python<|channel|>analysis<|message|>1', { calls })).toEqual({ reasoning: '', content: '' });
  });

  it('ends a message at <|return|> or <|call|> when the text holds them', () => {
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>A<|call|><|start|>assistant<|channel|>final<|message|>B<|return|>')).toEqual({ reasoning: 'A', content: 'B' });
  });

  it('starts inside the analysis channel when the prompt opened it', () => {
    expectSameAtEverySplit('harmony', 'Thinking.<|end|><|start|>assistant<|channel|>final<|message|>Answer.', { reasoning: 'Thinking.', content: 'Answer.' }, true);
  });
});

describe('<think> blocks (DeepSeek-R1, Qwen3)', () => {
  it('splits <think>…</think> from the answer, trimming around both, at every split', () => {
    expectSameAtEverySplit('think', '<think>\nThe user greets me.\n\nSo I greet back.\n</think>\n\nHello!', { reasoning: 'The user greets me.\n\nSo I greet back.', content: 'Hello!' });
  });

  it('starts inside the block when the template opened it (thinking forced open)', () => {
    expectSameAtEverySplit('think', 'Greeting.\n</think>\n\nHi there.', { reasoning: 'Greeting.', content: 'Hi there.' }, true);
  });

  it('passes a reply without a block through untouched, tags that only look alike included', () => {
    expectSameAtEverySplit('think', ' Plain <thing> and </think> text', { reasoning: '', content: ' Plain <thing> and </think> text' });
    expectSameAtEverySplit('think', '<thin', { reasoning: '', content: '<thin' });
  });

  it('drops an empty block (a template that turned thinking off) and keeps a cut-off one as reasoning', () => {
    expectSameAtEverySplit('think', '<think>\n\n</think>\n\nAnswer', { reasoning: '', content: 'Answer' });
    expectSameAtEverySplit('think', '<think>\nhalf a thought </thi', { reasoning: 'half a thought </thi', content: '' });
  });

  it('never emits reasoning after content, and holds back only what might be a tag', () => {
    const p = new ReasoningParser('think');
    expect(p.push('<think>a')).toEqual([{ reasoning: 'a' }]);
    expect(p.push(' b </')).toEqual([{ reasoning: ' b' }]);
    expect(p.push('think>\n')).toEqual([]);
    expect(p.push('\nAns')).toEqual([{ content: 'Ans' }]);
    expect(p.push('wer')).toEqual([{ content: 'wer' }]);
    expect(p.finish()).toEqual([]);
  });
});

describe('choosing the syntax', () => {
  it('harmony for gpt-oss or a template with <|channel|>, think for a template with <think>, else none', () => {
    expect(reasoningSyntax('gpt-oss', undefined)).toBe('harmony');
    expect(reasoningSyntax('llama', '{{ "<|start|>assistant<|channel|>final<|message|>" }}')).toBe('harmony');
    expect(reasoningSyntax('qwen3', '{%- if enable_thinking %}<think>\n{% endif %}')).toBe('think');
    expect(reasoningSyntax('llama', '{{ messages }}')).toBe('none');
    expect(reasoningSyntax('llama', undefined)).toBe('none');
  });

  it('sees a generation prompt that opens the thinking', () => {
    expect(thinkingOpen('think', '<｜User｜>Hi<｜Assistant｜><think>\n')).toBe(true);
    expect(thinkingOpen('think', '<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(false);
    expect(thinkingOpen('think', '<|im_start|>assistant\n')).toBe(false);
    expect(thinkingOpen('harmony', '<|start|>assistant')).toBe(false);
    expect(thinkingOpen('harmony', '<|start|>assistant<|channel|>analysis<|message|>')).toBe(true);
    expect(thinkingOpen('none', '<think>')).toBe(false);
  });

  it("passes everything through for 'none'", () => {
    expectSameAtEverySplit('none', '<think>x</think>y', { reasoning: '', content: '<think>x</think>y' });
  });
});

describe('an assistant turn\'s reasoning, rendered by the template (as llama.cpp passes it)', () => {
  const tc = (src: string) => ({ model: 'gpt2', tokens: ['<|endoftext|>', '<|im_end|>'], bosId: undefined, eosId: 1, chatTemplate: src, addBos: false, merges: [], scores: new Float32Array(0), tokenTypes: new Int32Array(0) }) as unknown as TokenizerConfig;
  const harmony = tc(readFileSync(new URL('./models/templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8'));
  const qwen3 = tc(readFileSync(new URL('./tools/templates/Qwen-Qwen3-0.6B.jinja', import.meta.url), 'utf8'));
  const turn = [{ role: 'user' as const, content: 'Hi' }, { role: 'assistant' as const, content: 'Hello!', reasoning: 'They greet me.' }];

  it('gpt-oss: as `thinking`, shown for the last turn and dropped once a user speaks after it', () => {
    expect(renderChat(harmony, turn, { addGenerationPrompt: false }).text).toContain('<|start|>assistant<|channel|>analysis<|message|>They greet me.<|end|>');
    const next = renderChat(harmony, [...turn, { role: 'user', content: 'Bye' }], { addGenerationPrompt: true }).text;
    expect(next).toContain('<|start|>assistant<|channel|>final<|message|>Hello!<|end|><|start|>user<|message|>Bye');
    expect(next).not.toContain('They greet me.');
  });

  it('Qwen3: as reasoning_content, in a <think> block after the last user message only', () => {
    expect(renderChat(qwen3, turn, { addGenerationPrompt: false }).text).toContain('<|im_start|>assistant\n<think>\nThey greet me.\n</think>\n\nHello!');
    expect(renderChat(qwen3, [...turn, { role: 'user', content: 'Bye' }], { addGenerationPrompt: true }).text).not.toContain('They greet me.');
  });
});
