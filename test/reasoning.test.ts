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

describe('harmony edge cases (from mutation testing)', () => {
  const calls = new Set(['get_weather']);

  it('a text with a tag but no harmony header is content whole, tags and all', () => {
    expectSameAtEverySplit('harmony', 'Just an answer <|end|> more', { reasoning: '', content: 'Just an answer <|end|> more' });
    // Text after a finished message that is no header is content too, whatever the message before was.
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>A<|end|>plain <|end|> text')).toEqual({ reasoning: 'A', content: 'plain <|end|> text' });
  });

  it('a header-like text longer than 512 characters without <|message|> is shown; one up to 512 is an unfinished header', () => {
    const long = `<|channel|>${'x'.repeat(502)}`; // 513
    expect(long.length).toBe(513);
    expect(splitReasoning('harmony', long)).toEqual({ reasoning: '', content: long });
    expect(splitReasoning('harmony', long.slice(0, 512))).toEqual({ reasoning: '', content: '' });
    expect(streamed('harmony', [long.slice(0, 500), long.slice(500), ' and on'])).toEqual({ reasoning: '', content: `${long} and on` });
  });

  it('a reply that is only the start of a marker or of a recipient is text; a recipient cut off is nothing', () => {
    for (const text of ['t', 'to', '<']) expect(splitReasoning('harmony', text), text).toEqual({ reasoning: '', content: text });
    expect(splitReasoning('harmony', ' to=functions.f')).toEqual({ reasoning: '', content: '' });
    expect(splitReasoning('harmony', ' to=functions.f<|chan')).toEqual({ reasoning: '', content: '' });
  });

  it('a recipient with no space before it (the reply\'s first header) is still a recipient', () => {
    expect(splitReasoning('harmony', 'to=functions.f<|channel|>commentary<|message|>{}')).toEqual({ reasoning: '', content: '' });
    expect(splitReasoning('harmony', 'to=functions.get_weather<|channel|>commentary<|message|>{}', { calls }))
      .toEqual({ reasoning: '', content: '<|start|>assistant to=functions.get_weather<|channel|>commentary<|message|>{}' });
  });

  it('a message with no channel in its header is content', () => {
    expect(splitReasoning('harmony', '<|message|>Hi')).toEqual({ reasoning: '', content: 'Hi' });
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>A<|end|><|start|>assistant<|message|>Hi')).toEqual({ reasoning: 'A', content: 'Hi' });
  });

  it('a message ends at the earliest of its end markers, whichever is listed first', () => {
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>A<|return|><|start|>assistant<|channel|>final<|message|>B<|end|>')).toEqual({ reasoning: 'A', content: 'B' });
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>A<|call|><|start|>assistant<|channel|>final<|message|>B<|end|>')).toEqual({ reasoning: 'A', content: 'B' });
  });

  it('a call after a message closed only by <|start|> keeps its one role header', () => {
    const text = '<|channel|>analysis<|message|>A<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{}';
    expectSameAtEverySplit('harmony', text, { reasoning: 'A', content: '<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{}' }, false, calls);
  });

  it('a call header with whitespace before its <|start|> gets no second role header', () => {
    expect(splitReasoning('harmony', '<|channel|>analysis<|message|>A<|end|>\n<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{}', { calls }))
      .toEqual({ reasoning: 'A', content: '\n<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{}' });
  });

  it('a call only counts as one when it goes to functions.: a built-in tool of the same name is dropped', () => {
    expect(splitReasoning('harmony', '<|channel|>commentary to=container.get_weather<|message|>{}', { calls })).toEqual({ reasoning: '', content: '' });
  });

  it('opened in the analysis channel, the reasoning keeps its leading whitespace (only <think> trims it)', () => {
    expectSameAtEverySplit('harmony', ' \nThinking.<|end|><|start|>assistant<|channel|>final<|message|>Answer.', { reasoning: ' \nThinking.', content: 'Answer.' }, true);
  });
});

describe('the deltas of one push (what a stream sends)', () => {
  it('harmony: one delta for consecutive text of one kind; reasoning then content share one; reasoning after content starts a new one', () => {
    const one = (text: string, calls?: ReadonlySet<string>) => new ReasoningParser('harmony', { calls }).push(text);
    expect(one(HARMONY)).toEqual([{ reasoning: 'User says hi. Reply briefly.', content: 'Hello! How can I help?' }]);
    expect(one('<|channel|>analysis<|message|>A<|end|><|start|>assistant<|channel|>analysis<|message|>B<|end|>')).toEqual([{ reasoning: 'AB' }]);
    expect(one('<|channel|>commentary<|message|>A<|end|><|start|>assistant<|channel|>final<|message|>B<|end|>')).toEqual([{ content: 'AB' }]);
    expect(one('<|channel|>final<|message|>X<|end|><|start|>assistant<|channel|>analysis<|message|>Y<|end|>')).toEqual([{ content: 'X' }, { reasoning: 'Y' }]);
    expect(one('<|channel|>analysis<|message|>A<|end|><|start|>assistant<|channel|>final<|message|>X<|end|><|start|>assistant<|channel|>analysis<|message|>Y<|end|>'))
      .toEqual([{ reasoning: 'A', content: 'X' }, { reasoning: 'Y' }]);
    expect(one('<|channel|>analysis<|message|>A<|end|><|start|>assistant<|channel|>commentary to=functions.f<|message|>{}<|call|>', new Set(['f'])))
      .toEqual([{ reasoning: 'A', content: '<|start|>assistant<|channel|>commentary to=functions.f<|message|>{}<|call|>' }]);
  });

  it('harmony: text that cannot be a header goes out in the push that brings it', () => {
    const p = new ReasoningParser('harmony');
    expect(p.push('Hello')).toEqual([{ content: 'Hello' }]);
    expect(p.push(' there')).toEqual([{ content: ' there' }]);
    expect(p.finish()).toEqual([]);
  });

  it('think: a whole block and its answer in one push come out as one delta, the answer not held back', () => {
    expect(new ReasoningParser('think').push('<think>a</think>b')).toEqual([{ reasoning: 'a', content: 'b' }]);
    expect(new ReasoningParser('think', { open: true }).push('a</think>\n\nb')).toEqual([{ reasoning: 'a', content: 'b' }]);
  });
});

describe('<think> blocks (DeepSeek-R1, Qwen3)', () => {
  it('splits <think>…</think> from the answer, trimming around both, at every split', () => {
    expectSameAtEverySplit('think', '<think>\nThe user greets me.\n\nSo I greet back.\n</think>\n\nHello!', { reasoning: 'The user greets me.\n\nSo I greet back.', content: 'Hello!' });
  });

  it('starts inside the block when the template opened it (thinking forced open)', () => {
    expectSameAtEverySplit('think', 'Greeting.\n</think>\n\nHi there.', { reasoning: 'Greeting.', content: 'Hi there.' }, true);
    // The whitespace the block opens with is trimmed too.
    expectSameAtEverySplit('think', '\n\nGreeting.\n</think>\n\nHi there.', { reasoning: 'Greeting.', content: 'Hi there.' }, true);
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
    // The tag may end the prompt with no whitespace after it, or with several lines.
    expect(thinkingOpen('think', '<|im_start|>assistant\n<think>')).toBe(true);
    expect(thinkingOpen('think', '<|im_start|>assistant\n<think>\n\n')).toBe(true);
    expect(thinkingOpen('none', '<|start|>assistant<|channel|>analysis<|message|>')).toBe(false);
  });

  it("passes everything through for 'none'", () => {
    expectSameAtEverySplit('none', '<think>x</think>y', { reasoning: '', content: '<think>x</think>y' });
    expectSameAtEverySplit('none', '<|channel|>analysis<|message|>x<|end|>y', { reasoning: '', content: '<|channel|>analysis<|message|>x<|end|>y' });
    expectSameAtEverySplit('none', 'x<|end|>y', { reasoning: '', content: 'x<|end|>y' }, true);
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
