// gpt-oss (harmony) tool calls: the parser (src/tools/harmony.ts) behind the
// reasoning splitter (src/reasoning.ts, `calls`), with the cases of llama.cpp's
// tests/test-chat.cpp "GPT-OSS format tests" ported; streaming at every split
// (the deltas add up to the whole parse, and no markup reaches the content); the
// forced-call grammar against the same replies; and the tool loop rendered
// through the real gpt-oss template, the rendered call parsing back.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ChatMessage, Tool } from '../../src/api.ts';
import type { TokenizerConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { grammarAccepts } from '../../src/grammar/index.ts';
import { mergeDeltas, ReasoningParser } from '../../src/reasoning.ts';
import { renderChat } from '../../src/tokenizer/chat.ts';
import { excluding } from '../../src/tools/grammar.ts';
import { detectToolFormat, parseReply, parseToolOutput, planTools, replyMessage, type StreamDelta, ToolCallStream, toolGrammar } from '../../src/tools/index.ts';

const HARMONY = readFileSync(new URL('../models/templates/openai-gpt-oss-120b.jinja', import.meta.url), 'utf8');
const integer = { type: 'object', properties: { arg1: { type: 'integer', description: 'The arg.' } }, required: ['arg1'] };
/** llama.cpp's special_function_tool and the "Complex tool calling" case's edit tool. */
const special: Tool = { type: 'function', function: { name: 'special_function', description: 'I\'m special', parameters: integer } };
const edit: Tool = { type: 'function', function: { name: 'edit', description: 'Edit a file', parameters: {
  type: 'object',
  properties: { oldString: { type: 'string', description: 'Old string to replace.' }, newString: { type: 'string', description: 'New replacement string.' }, replaceAll: { type: 'boolean', description: 'Whether to replace all occurrences.' } },
  required: ['oldString', 'newString'],
} } };
const names = new Set(['special_function', 'edit']);
const opts = { format: 'harmony' as const, names };
const CONTENT = "Hello, world!\nWhat's up?";
const THINKING = "I'm\nthinking";
const ARG1 = ['special_function', '{"arg1": 1}'];

/** A whole reply as chat() and the server read it: the splitter (reasoning_format auto) hands calls on to the tool parser; none: the raw reply. */
function read(text: string, reasoning = true) {
  let passed = text;
  let thinking = '';
  if (reasoning) {
    const p = new ReasoningParser('harmony', { calls: names });
    const d = mergeDeltas([...p.push(text), ...p.finish()]);
    passed = d.content;
    thinking = d.reasoning;
  }
  const r = parseReply({ format: 'harmony', render: { system: [] }, parse: opts, idKind: 'openai', markers: [] }, passed);
  return { reasoning: thinking, content: r.content, calls: r.toolCalls.map((c) => [c.name, c.arguments]) };
}

/** The same reply streamed in these pieces: the deltas folded, and the final calls. */
function streamed(pieces: string[], reasoning = true) {
  const split = reasoning ? new ReasoningParser('harmony', { calls: names }) : undefined;
  const calls = new ToolCallStream(opts, 'openai');
  const deltas: StreamDelta[] = [];
  let thinking = '';
  const feed = (text: string) => {
    if (!split) { deltas.push(...calls.push(text)); return; }
    for (const d of split.push(text)) { thinking += d.reasoning ?? ''; if (d.content) deltas.push(...calls.push(d.content)); }
  };
  pieces.forEach(feed);
  for (const d of split?.finish() ?? []) { thinking += d.reasoning ?? ''; if (d.content) deltas.push(...calls.push(d.content)); }
  const last = calls.finish();
  deltas.push(...last.deltas);
  const content = deltas.map((d) => ('content' in d ? d.content : '')).join('');
  const folded: string[][] = [];
  for (const d of deltas) {
    if ('name' in d) folded[d.index] = [d.name, ''];
    else if ('arguments' in d) folded[d.index][1] += d.arguments;
  }
  return { reasoning: thinking, content, calls: folded, final: last.calls.map((c) => [c.name, c.arguments]) };
}

/** Every cut into two pieces, into three (short replies), and one character at a time: the same as the whole. */
function expectSameStreamed(text: string, reasoning = true) {
  const want = read(text, reasoning);
  const check = (pieces: string[], label: string) => {
    const s = streamed(pieces, reasoning);
    expect({ reasoning: s.reasoning, content: s.content, calls: s.calls }, label).toEqual(want);
    expect(s.final, label).toEqual(want.calls);
    if (reasoning) expect(s.content, label).not.toContain('<|');
  };
  const n = text.length;
  for (let i = 0; i <= n; i++) check([text.slice(0, i), text.slice(i)], `cut at ${i}`);
  if (n <= 140) for (let i = 0; i <= n; i += 3) for (let j = i; j <= n; j += 2) check([text.slice(0, i), text.slice(i, j), text.slice(j)], `cuts at ${i}, ${j}`);
  check([...text], 'by character');
  return want;
}

describe("llama.cpp's GPT-OSS format tests (test-chat.cpp)", () => {
  // [label, model output after the generation prompt <|start|>assistant, reasoning, content, calls]
  const cases: [string, string, string, string, string[][]][] = [
    ['basic content only - final channel', `<|channel|>final<|message|>${CONTENT}`, '', CONTENT, []],
    ['basic content only - commentary channel', `<|channel|>commentary<|message|>${CONTENT}`, '', CONTENT, []],
    ['analysis (reasoning) with final (content)', `<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant<|channel|>final<|message|>${CONTENT}`, THINKING, CONTENT, []],
    ['analysis only (partial)', `<|channel|>analysis<|message|>${THINKING}`, THINKING, '', []],
    ['tool call with recipient in role header', ' to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}', '', '', [ARG1]],
    ['tool call with recipient in channel header', '<|channel|>analysis to=functions.special_function<|message|>{"arg1": 1}', '', '', [ARG1]],
    ['tool call with constraint', ' to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>{"arg1": 1}', '', '', [ARG1]],
    ['tool call in commentary channel (channel header variant)', '<|channel|>commentary to=functions.special_function<|message|>{"arg1": 1}', '', '', [ARG1]],
    ['tool call with reasoning + content', `<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}`, THINKING, '', [ARG1]],
    ['complex tool calling', '<|channel|>analysis<|message|>Thinking about edit...<|end|><|start|>assistant<|channel|>commentary to=functions.edit <|constrain|>json<|message|>{"oldString": "if (part < railCount - 1) {", "newString": "if (part < 4) {", "replaceAll": false}',
      'Thinking about edit...', '', [['edit', '{"oldString": "if (part < railCount - 1) {", "newString": "if (part < 4) {", "replaceAll": false}']]],
    // Unsolicited calls (built-in tools): no good way to handle them, so no content.
    ['builtin function - recipient in role', '<|channel|>analysis<|message|>I will execute python to say hello<|end|><|start|>assistant to=container.exec<|channel|>commentary<|message|>python3 -c \'print("hello")\'', 'I will execute python to say hello', '', []],
    ['builtin function - recipient in channel', '<|channel|>analysis<|message|>I will execute python to say hello<|end|><|start|>assistant<|channel|>commentary to=python <|constrain|>code<|message|>print("hello")', 'I will execute python to say hello', '', []],
    ['"<|channel|>commentary to=assistant" before reasoning', `<|channel|>commentary to=assistant<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant<|channel|>final<|message|>${CONTENT}`, THINKING, CONTENT, []],
    ['"<|channel|>commentary to=assistant" before final message', `<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant<|channel|>commentary to=assistant<|channel|>final<|message|>${CONTENT}`, THINKING, CONTENT, []],
  ];
  for (const [label, text, reasoning, content, calls] of cases) {
    it(label, () => expect(read(text)).toEqual({ reasoning, content, calls }));
  }

  it('reasoning_format none: the analysis stays in the content as written, the call is still read', () => {
    // llama.cpp keeps "<|channel|>analysis<|message|>…<|end|>" as content; the call's header goes with the call.
    expect(read(`<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}`, false))
      .toEqual({ reasoning: '', content: `<|channel|>analysis<|message|>${THINKING}<|end|>`, calls: [ARG1] });
    for (const [, text, , , calls] of cases.slice(4, 10)) expect(read(text, false).calls).toEqual(calls);
  });

  it('streams every case the same at every split, with no markup in the content', () => {
    for (const [, text] of cases) expectSameStreamed(text);
    expectSameStreamed(cases[8][1], false);
  });
});

describe('harmony replies beyond the ported cases', () => {
  it('keeps a commentary preamble as content before the call, and reads the call as the template writes it', () => {
    const text = '<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant to=functions.special_function<|channel|>commentary json<|message|>{"arg1": 2}<|call|>';
    expect(expectSameStreamed(text)).toEqual({ reasoning: '', content: 'Let me check.', calls: [['special_function', '{"arg1": 2}']] });
  });

  it('reads several calls when generation goes on past <|call|>', () => {
    const call = (n: number) => `<|start|>assistant to=functions.special_function<|channel|>commentary json<|message|>{"arg1": ${n}}<|call|>`;
    expect(read(`<|channel|>analysis<|message|>Two.<|end|>${call(1)}${call(2)}`).calls).toEqual([ARG1, ['special_function', '{"arg1": 2}']]);
  });

  it('a call to an undeclared function is dropped by the splitter (as calls are without tools), kept as written in a raw reply', () => {
    const text = '<|channel|>commentary to=functions.rm_rf <|constrain|>json<|message|>{}';
    expect(expectSameStreamed(`${text}<|end|><|start|>assistant<|channel|>final<|message|>Done.`)).toEqual({ reasoning: '', content: 'Done.', calls: [] });
    expect(read(text, false)).toEqual({ reasoning: '', content: text, calls: [] });
    const p = new ReasoningParser('harmony');
    expect(mergeDeltas([...p.push(text), ...p.finish()])).toEqual({ reasoning: '', content: '' });
  });

  it('a marker in the text is no header: what follows it up to the next message stays text', () => {
    const text = 'Write <|channel|> tags.<|start|>assistant<|channel|>commentary to=functions.special_function<|message|>{"arg1": 1}';
    expect(expectSameStreamed(text, false)).toEqual({ reasoning: '', content: 'Write <|channel|> tags.', calls: [ARG1] });
  });

  it('reads a call whose recipient opens the reply with no space before it (to=functions.f…), through the splitter or raw', () => {
    const text = 'to=functions.special_function<|channel|>commentary<|message|>{"arg1": 1}';
    expect(expectSameStreamed(text)).toEqual({ reasoning: '', content: '', calls: [ARG1] });
    expect(read(text, false)).toEqual({ reasoning: '', content: '', calls: [ARG1] });
  });

  it('keeps arguments that are not JSON, or cut off, as the model wrote them', () => {
    expect(read('<|channel|>commentary to=functions.edit<|message|>{"oldString": oops}').calls).toEqual([['edit', '{"oldString": oops}']]);
    expect(read('<|channel|>commentary to=functions.edit<|message|>{"oldString": "a').calls).toEqual([['edit', '{"oldString": "a']]);
    expect(read('<|channel|>commentary to=functions.edit<|message|>').calls).toEqual([['edit', '']]);
  });

  it('holds back a header until it is decided, and streams the arguments as they come', () => {
    const s = new ToolCallStream(opts, 'openai');
    expect(s.push('<|start|>assistant<|channel|>commentary to=functions.spec')).toEqual([]);
    const head = s.push('ial_function<|message|>{"arg1"');
    expect(head).toMatchObject([{ index: 0, name: 'special_function' }, { index: 0, arguments: '{"arg1"' }]);
    expect(s.push(': 1}')).toEqual([{ index: 0, arguments: ': 1}' }]);
    expect(s.finish().calls).toMatchObject([{ name: 'special_function', arguments: '{"arg1": 1}', done: true }]);
  });
});

describe('the harmony call parser on its own (parseToolOutput, whole and partial)', () => {
  const whole = (text: string) => parseToolOutput(text, { ...opts, partial: false });
  const partial = (text: string) => parseToolOutput(text, { ...opts, partial: true });
  const CALL = '<|channel|>commentary to=functions.special_function<|message|>';

  it('takes each message\'s earliest end: a call ended by <|end|> or by the next <|start|> is followed by the next call', () => {
    const second = '<|start|>assistant to=functions.special_function<|channel|>commentary<|message|>{"arg1": 2}<|call|>';
    for (const end of ['<|end|>', '']) {
      expect(whole(`${CALL}{"arg1": 1}${end}${second}`).calls.map((c) => [c.name, c.arguments]), end).toEqual([ARG1, ['special_function', '{"arg1": 2}']]);
    }
    // A raw final message after a call ended by <|start|> stays whole.
    expect(whole(`${CALL}{"arg1": 1}<|start|>assistant<|channel|>final<|message|>Done`).content).toBe('<|start|>assistant<|channel|>final<|message|>Done');
  });

  it('a raw reply that opens with the recipient gives the call once, its header not as text, whatever follows', () => {
    expect(whole(' to=functions.special_function<|channel|>commentary<|message|>{"arg1": 1}<|call|>')).toEqual({ content: '', calls: [{ name: 'special_function', arguments: '{"arg1": 1}', done: true }] });
    expect(whole(' to=functions.special_function<|channel|>commentary<|message|>{"arg1": 1}<|call|>Done.')).toEqual({ content: 'Done.', calls: [{ name: 'special_function', arguments: '{"arg1": 1}', done: true }] });
    // ` to=` later in the text is no role header.
    const text = 'Say to=functions.special_function<|channel|>commentary<|message|>{"arg1": 1}';
    expect(whole(text)).toEqual({ content: text, calls: [] });
  });

  it('arguments that are not JSON end at the message\'s end marker, or (streaming) before what may be one, less trailing whitespace', () => {
    expect(whole(`${CALL}oops<|call|>`).calls).toEqual([{ name: 'special_function', arguments: 'oops', done: false }]);
    expect(whole(`${CALL}oops \n`).calls).toEqual([{ name: 'special_function', arguments: 'oops', done: false }]);
    expect(partial(`${CALL}oops<|ca`).calls).toEqual([{ name: 'special_function', arguments: 'oops', done: false }]);
    expect(partial(`${CALL}oops<`).calls).toEqual([{ name: 'special_function', arguments: 'oops', done: false }]);
    // JSON cut off keeps its trailing whitespace (more of the value is coming); no arguments yet is not done either.
    expect(whole(`${CALL}{"arg1": `).calls).toEqual([{ name: 'special_function', arguments: '{"arg1": ', done: false }]);
    expect(whole(CALL).calls).toEqual([{ name: 'special_function', arguments: '', done: false }]);
    expect(whole(`${CALL}{"arg1": 1}`).calls).toEqual([{ name: 'special_function', arguments: '{"arg1": 1}', done: true }]);
  });

  it('streaming: holds back a reply that may yet open with a recipient, and only that', () => {
    for (const text of ['', 't', ' to', '\nt']) expect(partial(text), JSON.stringify(text)).toEqual({ content: '', calls: [] });
    for (const text of ['to', 'Hello', 'tomorrow']) expect(whole(text), text).toEqual({ content: text, calls: [] });
    expect(partial('Hello')).toEqual({ content: 'Hello', calls: [] });
    expect(partial('Hello <|chan')).toEqual({ content: 'Hello', calls: [] });
  });

  it('a header longer than 512 characters is text; one of 512 is a header', () => {
    const head = (n: number) => `<|channel|>commentary to=functions.special_function${' '.repeat(n - 51)}`;
    expect(head(512).length).toBe(512);
    expect(whole(`${head(512)}<|message|>{"arg1": 1}`).calls).toEqual([{ name: 'special_function', arguments: '{"arg1": 1}', done: true }]);
    const long = `${head(513)}<|message|>{"arg1": 1}`;
    expect(whole(long)).toEqual({ content: long, calls: [] });
    // Measured from the header's own start, not the reply's.
    const after = `${'x'.repeat(600)}${CALL}{"arg1": 1}`;
    expect(whole(after)).toEqual({ content: 'x'.repeat(600), calls: [{ name: 'special_function', arguments: '{"arg1": 1}', done: true }] });
  });

  it('streaming: an unfinished header is held up to 512 characters, then shown; a marker followed by another message is text at once', () => {
    const open = (n: number) => `<|channel|>${'x'.repeat(n - 11)}`;
    expect(partial(open(512))).toEqual({ content: '', calls: [] });
    expect(partial(open(513))).toEqual({ content: open(513), calls: [] });
    expect(partial(`${'x'.repeat(600)}<|channel|>commentary`)).toEqual({ content: 'x'.repeat(600), calls: [] });
    expect(partial('Write <|channel|> tags.<|start|>assistant')).toEqual({ content: 'Write <|channel|> tags.', calls: [] });
  });
});

describe('the plan and the forced-call grammar', () => {
  it('detects harmony from the gpt-oss template or the architecture', () => {
    expect(detectToolFormat(HARMONY)).toBe('harmony');
    expect(detectToolFormat(undefined, 'gpt-oss')).toBe('harmony');
    expect(detectToolFormat('{{ messages }}', 'gpt-oss')).toBe('harmony');
    expect(planTools(HARMONY, { tools: [special] })).toMatchObject({ format: 'harmony', render: { tools: [special], system: [] }, markers: [] });
    expect(planTools(HARMONY, { tools: [special] }).grammar).toBeUndefined(); // auto: unconstrained
    expect(planTools(HARMONY, { tools: [special], choice: 'none' }).parse).toBeUndefined();
    expect(() => planTools(HARMONY, { tools: [special], responseSchema: { type: 'object' } })).toThrow(UsageError);
  });

  const grammar = (tools: Tool[]) => toolGrammar({ format: 'harmony', tools, parallel: false });
  const accepts = (text: string, tools = [special, edit]) => grammarAccepts({ grammar: grammar(tools) }, text);

  it("accepts llama.cpp's tool-call replies (tool_choice required: the whole reply after <|start|>assistant)", () => {
    expect(accepts(' to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}')).toBe(true);
    expect(accepts('<|channel|>analysis to=functions.special_function<|message|>{"arg1": 1}')).toBe(true);
    expect(accepts(' to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>{"arg1": 1}')).toBe(true);
    expect(accepts('<|channel|>commentary to=functions.special_function<|message|>{"arg1": 1}')).toBe(true);
    expect(accepts(`<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}`)).toBe(true);
    expect(accepts('<|channel|>analysis<|message|>Thinking about edit...<|end|><|start|>assistant<|channel|>commentary to=functions.edit <|constrain|>json<|message|>{"oldString": "if (part < railCount - 1) {", "newString": "if (part < 4) {", "replaceAll": false}')).toBe(true);
    // As the template writes a call, after a preamble and a stray commentary prefix.
    expect(accepts('<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>commentary to=assistant<|channel|>analysis<|message|>a < b<|end|><|start|>assistant to=functions.special_function<|channel|>commentary json<|message|>{"arg1": 7}')).toBe(true);
  });

  it('refuses anything but a call: an answer, an undeclared or other function, bad arguments, a name glued to its constraint', () => {
    expect(accepts(`<|channel|>final<|message|>${CONTENT}`)).toBe(false);
    expect(accepts(`<|channel|>analysis<|message|>${THINKING}<|end|>`)).toBe(false);
    expect(accepts('<|channel|>commentary to=functions.rm_rf<|message|>{}')).toBe(false);
    expect(accepts('<|channel|>commentary to=functions.edit<|message|>{"arg1": 1}', [special])).toBe(false); // a named tool_choice
    expect(accepts('<|channel|>commentary to=functions.special_function<|message|>{"arg1": "one"}')).toBe(false);
    expect(accepts('<|channel|>commentary to=functions.special_functionjson<|message|>{"arg1": 1}')).toBe(false);
    expect(accepts('<|channel|>analysis<|message|>a<|end|>b<|end|><|start|>assistant to=functions.special_function<|channel|>commentary<|message|>{"arg1": 1}')).toBe(false);
  });

  it('what the grammar accepts parses back into the call', () => {
    const text = '<|channel|>analysis<|message|>Hmm.<|end|><|start|>assistant<|channel|>commentary to=functions.special_function <|constrain|>json<|message|>{"arg1": 3}';
    expect(accepts(text)).toBe(true);
    expect(read(text)).toEqual({ reasoning: 'Hmm.', content: '', calls: [['special_function', '{"arg1": 3}']] });
    expect(planTools(HARMONY, { tools: [special, edit], choice: 'required' }).grammar).toBe(grammar([special, edit]));
    expect(planTools(HARMONY, { tools: [special, edit], choice: { type: 'function', function: { name: 'edit' } } }).grammar).toBe(grammar([edit]));
    // One call per reply (<|call|> ends generation), parallel or not.
    expect(planTools(HARMONY, { tools: [special], choice: 'required', parallel: true }).grammar).toBe(grammar([special]));
  });

  it('excluding(): any text without the string, by a small automaton', () => {
    const g = (text: string) => grammarAccepts({ grammar: `root ::= x0\n${excluding('x', '<|end|>')}\n` }, text);
    for (const ok of ['', 'plain', '<', '<|', '<|en', '<<|end|', 'a <| b <|end| c |>', '<|end>']) expect(g(ok), ok).toBe(true);
    for (const bad of ['<|end|>', 'x<|end|>y', '<<|end|>', '<|<|end|>']) expect(g(bad), bad).toBe(false);
  });
});

describe('the tool loop through the real gpt-oss template', () => {
  const tc = { model: 'gpt2', pre: undefined, tokens: ['<|startoftext|>', '<|return|>'], scores: new Float32Array(2), tokenTypes: Int32Array.of(3, 3), merges: [], bosId: 0, eosId: 1, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: HARMONY } as TokenizerConfig;
  const weather: Tool = { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city.', parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name.' } }, required: ['city'] } } };
  // strftime_now: the template prints today's date, as llama.cpp's does.
  const render = (messages: ChatMessage[], addGenerationPrompt = true) => renderChat(tc, messages, { addGenerationPrompt, tools: [weather] }).text.replace(/Current date: \d{4}-\d{2}-\d{2}/, 'Current date: DATE');
  const user: ChatMessage = { role: 'user', content: 'Weather in Paris?' };
  const SYSTEM = '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: DATE\n\nReasoning: medium\n\n'
    + "# Valid channels: analysis, commentary, final. Channel must be included for every message.\nCalls to these tools must go to the commentary channel: 'functions'.<|end|>"
    + '<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n// Current weather in a city.\ntype get_weather = (_: {\n// City name.\ncity: string,\n}) => any;\n\n} // namespace functions<|end|>';

  it('renders the tools, the call (object arguments, with its thinking) and the result as harmony messages', () => {
    const plan = planTools(HARMONY, { tools: [weather] });
    const p = new ReasoningParser('harmony', { calls: new Set(['get_weather']) });
    const d = mergeDeltas([...p.push('<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}'), ...p.finish()]);
    const message = { ...replyMessage(plan, d.content), reasoning: d.reasoning };
    expect(message).toMatchObject({ role: 'assistant', content: '', reasoning: 'Need the weather.', toolCalls: [{ name: 'get_weather', arguments: '{"city": "Paris"}' }] });
    const call = (message.toolCalls ?? [])[0];
    expect(render([user, message, { role: 'tool', toolCallId: call.id, content: '{"temp_c": 21}' }])).toBe(`${SYSTEM}<|start|>user<|message|>Weather in Paris?<|end|>`
      + '<|start|>assistant<|channel|>analysis<|message|>Need the weather.<|end|>'
      + '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>'
      + '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"{\\"temp_c\\": 21}"<|end|><|start|>assistant');
    // Once a final answer follows, the template drops the call's thinking.
    const answered = render([user, message, { role: 'tool', toolCallId: call.id, content: '21' }, { role: 'assistant', content: 'It is 21 °C.' }, { role: 'user', content: 'Thanks' }]);
    expect(answered).not.toContain('Need the weather.');
    expect(answered).toContain('<|call|><|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"21"<|end|><|start|>assistant<|channel|>final<|message|>It is 21 °C.<|end|>');
  });

  it("reconstructs the prompt plus the reply, as llama.cpp's reconstruction test does", () => {
    const plan = planTools(HARMONY, { tools: [weather] });
    for (const [output, thinking] of [
      ['<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}', 'Need the weather.'],
      [' to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}', ''],
    ]) {
      const p = new ReasoningParser('harmony', { calls: new Set(['get_weather']) });
      const d = mergeDeltas([...p.push(output), ...p.finish()]);
      expect(d.reasoning).toBe(thinking);
      const message = { ...replyMessage(plan, d.content), ...(d.reasoning ? { reasoning: d.reasoning } : {}) };
      const again = render([user, message], false);
      expect(again.startsWith(render([user]) + output)).toBe(true);
      expect(again.slice((render([user]) + output).length)).toBe('<|call|>');
    }
  });
});
