// Format detection on real templates, the tool plan per tool_choice, and the
// forced-call grammars (src/tools/grammar.ts): each accepts exactly its family's
// call syntax around arguments that validate, and what it accepts parses back
// (src/tools/parse.ts) into that call.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Tool } from '../../src/api.ts';
import { UsageError } from '../../src/errors.ts';
import { grammarAccepts } from '../../src/grammar/index.ts';
import { detectToolFormat, markerGbnf, parseReply, planTools, prefixRules, type ToolFormat, toolGrammar } from '../../src/tools/index.ts';

const T = (name: string) => readFileSync(new URL(`./templates/${name}.jinja`, import.meta.url), 'utf8');
const weather: Tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city'], additionalProperties: false } } };
const time: Tool = { type: 'function', function: { name: 'get_time', description: 'Now.' } };
const tools = [weather, time];

describe('detectToolFormat', () => {
  const cases: [string, ToolFormat][] = [
    ['meta-llama-Llama-3.1-8B-Instruct', 'llama3'], ['meta-llama-Llama-3.2-3B-Instruct', 'llama3'], ['meta-llama-Llama-3.3-70B-Instruct', 'llama3'],
    ['Qwen-Qwen2.5-7B-Instruct', 'hermes'], ['Qwen-Qwen3-0.6B', 'hermes'], ['NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use', 'hermes'],
    ['NousResearch-Hermes-3-Llama-3.1-8B-tool_use', 'hermes'],
    // Unsloth's SmolLM3 template (llama.cpp's copy) shows no tools at all.
    ['HuggingFaceTB-SmolLM3-3B', 'generic'],
    ['mistralai-Mistral-Nemo-Instruct-2407', 'mistral'], ['Mistral-Small-3.2-24B-Instruct-2506', 'mistral-args'], ['unsloth-mistral-Devstral-Small-2507', 'mistral-args'],
    ['ibm-granite-granite-3.3-2B-Instruct', 'granite'],
    ['google-gemma-2-2b-it', 'generic'], ['microsoft-Phi-3.5-mini-instruct', 'generic'], ['Qwen3-Coder', 'generic'],
  ];
  for (const [name, want] of cases) it(`${name} → ${want}`, () => expect(detectToolFormat(T(name))).toBe(want));
  it('no template → generic', () => expect(detectToolFormat(undefined)).toBe('generic'));
});

describe('forced-call grammars', () => {
  const accepts = (format: ToolFormat, text: string, o: { parallel?: boolean; callId?: boolean; allowResponse?: boolean; responseSchema?: unknown; only?: Tool[] } = {}) =>
    grammarAccepts({ grammar: toolGrammar({ format, tools: o.only ?? tools, parallel: o.parallel ?? false, callId: o.callId, allowResponse: o.allowResponse, responseSchema: o.responseSchema }) }, text);
  const good: [ToolFormat, string, object?][] = [
    ['hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>'],
    ['hermes', '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'],
    ['llama3', '{"name": "get_weather", "parameters": {"city": "Paris"}}'],
    ['mistral', '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]'],
    ['mistral-args', '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}'],
    ['mistral-args', '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}', { callId: true }],
    ['granite', '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]'],
    ['generic', '{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}'],
  ];
  for (const [format, text, o] of good) {
    it(`${format} accepts ${JSON.stringify(text.slice(0, 50))} and it parses back to the call`, () => {
      expect(accepts(format, text, o)).toBe(true);
      const plan = { ...planTools(undefined, { tools, choice: 'required' }), format, parse: { format, names: new Set(['get_weather', 'get_time']) } };
      const back = parseReply(plan, text);
      expect(back.content).toBe('');
      expect(back.toolCalls.map((c) => c.name)).toHaveLength(1);
      expect(JSON.parse(back.toolCalls[0].arguments)).toEqual(JSON.parse(text.match(/(\{"city[^}]*\}|\{\})/)?.[0] ?? 'null'));
    });
  }

  it('rejects arguments that do not validate, unknown names, text before the call, and a second call without parallel', () => {
    expect(accepts('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"city": 5}}\n</tool_call>')).toBe(false);
    expect(accepts('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"days": 3}}\n</tool_call>')).toBe(false); // city is required
    expect(accepts('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "P", "days": 9}}\n</tool_call>')).toBe(false); // maximum 7
    expect(accepts('hermes', '<tool_call>\n{"name": "rm", "arguments": {}}\n</tool_call>')).toBe(false);
    expect(accepts('hermes', 'Sure! <tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>')).toBe(false);
    const two = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "P"}}\n</tool_call>';
    expect(accepts('hermes', two)).toBe(false);
    expect(accepts('hermes', two, { parallel: true })).toBe(true);
    expect(accepts('mistral', '[TOOL_CALLS][{"name": "get_time", "arguments": {}, "id": "short"}]')).toBe(false);
    expect(accepts('mistral', '[TOOL_CALLS][{"name": "get_time", "arguments": {}, "id": "a1b2c3d4e"}, {"name": "get_time", "arguments": {}, "id": "a1b2c3d4f"}]', { parallel: true })).toBe(true);
    expect(accepts('generic', '{"tool_calls": [{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {}}]}', { parallel: true })).toBe(true);
  });

  it('a named function allows only that function', () => {
    expect(accepts('llama3', '{"name": "get_time", "parameters": {}}', { only: [weather] })).toBe(false);
    expect(accepts('llama3', '{"name": "get_weather", "parameters": {"city": "x"}}', { only: [weather] })).toBe(true);
  });

  it('generic with tool choice auto also allows {"response": …}, of the response schema if one is given', () => {
    expect(accepts('generic', '{"response": "Hello"}')).toBe(false);
    expect(accepts('generic', '{"response": "Hello"}', { allowResponse: true })).toBe(true);
    const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
    expect(accepts('generic', '{"response": {"n": 4}}', { allowResponse: true, responseSchema: schema })).toBe(true);
    expect(accepts('generic', '{"response": "Hello"}', { allowResponse: true, responseSchema: schema })).toBe(false);
  });

  it('each function\'s $refs resolve against its own parameters', () => {
    const ref: Tool = { type: 'function', function: { name: 'set_color', parameters: { $defs: { C: { enum: ['red', 'blue'] } }, type: 'object', properties: { c: { $ref: '#/$defs/C' } }, required: ['c'] } } };
    const g = toolGrammar({ format: 'hermes', tools: [ref, weather], parallel: false });
    expect(grammarAccepts({ grammar: g }, '<tool_call>\n{"name": "set_color", "arguments": {"c": "red"}}\n</tool_call>')).toBe(true);
    expect(grammarAccepts({ grammar: g }, '<tool_call>\n{"name": "set_color", "arguments": {"c": "green"}}\n</tool_call>')).toBe(false);
  });

  it('a marker that is one special token is matched by id', () => {
    const g = toolGrammar({ format: 'mistral', tools: [time], parallel: false, marker: markerGbnf((t) => (t === '[TOOL_CALLS]' ? { id: 5, silent: true } : undefined)) });
    expect(g).toMatch(/^root ::= <\[5\]> "\["/);
  });

  it('a parameters schema the grammar cannot enforce is a one-line UsageError naming the tool', () => {
    const bad: Tool = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { not: {} } } } } };
    const e = (() => { try { toolGrammar({ format: 'hermes', tools: [bad], parallel: false }); } catch (x) { return x as Error; } })();
    expect(e).toBeInstanceOf(UsageError);
    expect(e?.message).toMatch(/^tool 'f': its parameters .*'not' is not supported/);
  });
});

describe('prefixRules', () => {
  it('renames rules and references, not literals, classes, counts or tokens', () => {
    const g = 'root ::= "root" item{1,2} [a-z] <think> # root\nitem ::= "x" root';
    expect(prefixRules(g, 'p-')).toBe('p-root ::= "root" p-item{1,2} [a-z] <think> # root\np-item ::= "x" p-root');
  });
});

describe('planTools', () => {
  const qwen = T('Qwen-Qwen2.5-7B-Instruct');
  it('auto: unconstrained, calls parsed; required and named: a grammar', () => {
    const auto = planTools(qwen, { tools });
    expect(auto.grammar).toBeUndefined();
    expect(auto.parse?.format).toBe('hermes');
    expect(auto.render.tools).toBe(tools);
    expect(planTools(qwen, { tools, choice: 'required' }).grammar).toContain('tool-block');
    const named = planTools(qwen, { tools, choice: { type: 'function', function: { name: 'get_time' } } }).grammar as string;
    expect(named).toContain('get_time');
    expect(named).not.toContain('get_weather');
  });

  it('none: no tools shown, nothing parsed, no grammar', () => {
    const p = planTools(qwen, { tools, choice: 'none' });
    expect([p.render, p.grammar, p.parse]).toEqual([{ system: [] }, undefined, undefined]);
  });

  it('generic: always constrained, with the JSON instruction for the system prompt', () => {
    const p = planTools(undefined, { tools });
    expect(p.format).toBe('generic');
    expect(p.render.system[0]).toMatch(/^Respond in JSON format/);
    expect(grammarAccepts({ grammar: p.grammar as string }, '{"response": "hi"}')).toBe(true);
  });

  it('Mistral plans 9-character ids', () => {
    expect(planTools(T('mistralai-Mistral-Nemo-Instruct-2407'), { tools }).idKind).toBe('mistral9');
    expect(planTools(T('Mistral-Small-3.2-24B-Instruct-2506'), { tools }).idKind).toBe('mistral9');
    expect(planTools(T('unsloth-mistral-Devstral-Small-2507'), { tools }).idKind).toBe('openai');
  });

  it('refuses bad tools and choices in one line', () => {
    const bad: [unknown, unknown, RegExp][] = [
      [[{ type: 'function', function: { name: 'has space' } }], undefined, /must be 1 to 64 letters/],
      [[{ type: 'retrieval' }], undefined, /must be \{ type: "function"/],
      [[weather, weather], undefined, /appears twice/],
      [[{ type: 'function', function: { name: 'f', parameters: [] } }], undefined, /parameters must be a JSON Schema object/],
      [tools, 'sometimes', /tool choice must be/],
      [tools, { type: 'function', function: { name: 'nope' } }, /not among the tools/],
    ];
    for (const [t, choice, re] of bad) {
      expect(() => planTools(qwen, { tools: t as Tool[], choice: choice as 'auto' })).toThrow(re);
    }
    expect(() => planTools(qwen, { tools, responseSchema: {} })).toThrow(/cannot be combined with tools/);
  });
});
