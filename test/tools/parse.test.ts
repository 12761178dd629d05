// The tool-call parser (src/tools/parse.ts, stream.ts): cases ported from
// llama.cpp's tests/test-chat.cpp (special_function / special_function_with_opt,
// "Hello, world!\nWhat's up?"), malformed and cut-off replies, and the streaming
// property: fed in any pieces, the deltas add up to exactly the final parse.
import { describe, expect, it } from 'vitest';
import type { ToolFormat } from '../../src/tools/format.ts';
import { parseToolOutput } from '../../src/tools/parse.ts';
import { type StreamDelta, ToolCallStream } from '../../src/tools/stream.ts';
import { scanJson } from '../../src/tools/json-scan.ts';

const names = new Set(['special_function', 'special_function_with_opt', 'python']);
const parse = (format: ToolFormat, text: string, partial = false) => parseToolOutput(text, { format, names, partial });
const CONTENT = "Hello, world!\nWhat's up?";
/** Calls as [name, parsed arguments, id?]: llama.cpp compares arguments as JSON. */
const calls = (r: ReturnType<typeof parse>) => r.calls.map((c) => [c.name, c.done ? JSON.parse(c.arguments) : c.arguments, ...(c.id ? [c.id] : [])]);
const ARG1 = ['special_function', { arg1: 1 }];
const OPT = ['special_function_with_opt', { arg1: 1, arg2: 2 }];

describe('llama.cpp test-chat cases', () => {
  const cases: [string, ToolFormat, string, string, unknown[][]][] = [
    // MiMo-VL / Hermes 3 / Qwen 2.5: <tool_call> JSON.
    ['hermes call', 'hermes', '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}\n</tool_call>', '', [ARG1]],
    ['hermes call (no newline before the end tag)', 'hermes', '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>', '', [ARG1]],
    ['hermes content then call', 'hermes', `${CONTENT}<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>`, CONTENT, [ARG1]],
    ['hermes content, newline, call (Reka)', 'hermes', `${CONTENT}\n<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}\n</tool_call>`, CONTENT, [ARG1]],
    ['hermes parallel calls', 'hermes', '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}\n</tool_call>\n<tool_call>\n{"name": "special_function_with_opt", "arguments": {"arg1": 1, "arg2": 2}}\n</tool_call>', '', [ARG1, OPT]],
    ['hermes content only', 'hermes', CONTENT, CONTENT, []],
    // Mistral Nemo: [TOOL_CALLS] JSON array with ids.
    ['nemo call with id', 'mistral', '[TOOL_CALLS][{"name": "special_function", "arguments": {"arg1": 1}, "id": "123456789"}]', '', [[...ARG1, '123456789']]],
    ['nemo content only', 'mistral', CONTENT, CONTENT, []],
    // Mistral Small 3.2: [TOOL_CALLS]name[CALL_ID]id[ARGS]{...}.
    ['small 3.2 call', 'mistral-args', '[TOOL_CALLS]special_function[CALL_ID]123456789[ARGS]{"arg1": 1}', '', [[...ARG1, '123456789']]],
    ['small 3.2 parallel', 'mistral-args', '[TOOL_CALLS]special_function[CALL_ID]000000001[ARGS]{"arg1": 1}[TOOL_CALLS]special_function_with_opt[CALL_ID]000000002[ARGS]{"arg1": 1, "arg2": 2}', '', [[...ARG1, '000000001'], [...OPT, '000000002']]],
    // Devstral: [TOOL_CALLS]name[ARGS]{...}.
    ['devstral call', 'mistral-args', '[TOOL_CALLS]special_function[ARGS]{"arg1": 1}', '', [ARG1]],
    ['devstral content then call', 'mistral-args', `${CONTENT}[TOOL_CALLS]special_function[ARGS]{"arg1": 1}`, CONTENT, [ARG1]],
    // Llama 3.x: a JSON call at the start of the reply.
    ['llama 3.1 call', 'llama3', '{"name": "special_function", "parameters": {"arg1": 1}}', '', [ARG1]],
    ['llama 3.x call with "type": "function"', 'llama3', '{"type": "function", "name": "special_function", "parameters": {"arg1": 1}}', '', [ARG1]],
    ['llama 3.x call after <|python_tag|>', 'llama3', '<|python_tag|>{"name": "special_function", "parameters": {"arg1": 1}}', '', [ARG1]],
    ['llama 3.1 content only', 'llama3', CONTENT, CONTENT, []],
    ['llama 3.1 JSON that is no call', 'llama3', '"42"\n', '"42"\n', []],
    // Granite 3.x: <|tool_call|> JSON array.
    ['granite call', 'granite', '<|tool_call|>[{"name": "special_function", "arguments": {"arg1": 1}}]', '', [ARG1]],
    // Generic (templates without a known format).
    ['generic tool_call', 'generic', '{"tool_call": {"name": "special_function", "arguments": {"arg1": 1}}}', '', [ARG1]],
    ['generic tool_calls', 'generic', '{"tool_calls": [{"name": "special_function", "arguments": {"arg1": 1}, "id": "123456789"}]}', '', [ARG1]],
    ['generic response', 'generic', `{"response": ${JSON.stringify(CONTENT)}}`, CONTENT, []],
    ['generic plain text', 'generic', CONTENT, CONTENT, []],
  ];
  for (const [label, format, text, content, want] of cases) {
    it(label, () => {
      const r = parse(format, text);
      expect(r.content).toBe(content);
      expect(calls(r)).toEqual(want);
    });
  }

  it('a partial reply cut inside the arguments (message_assist_call_cutoff_args)', () => {
    const r = parse('hermes', '<tool_call>\n{"name": "special_function", "arguments": {"arg', true);
    expect(r.calls).toEqual([{ name: 'special_function', arguments: '{"arg', done: false }]);
    expect(r.content).toBe('');
  });
});

describe('what is not a call', () => {
  it('an undeclared name is text, in every format', () => {
    expect(parse('hermes', '<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>').calls).toEqual([]);
    expect(parse('llama3', '{"name": "rm_rf", "parameters": {}}').content).toBe('{"name": "rm_rf", "parameters": {}}');
    expect(parse('mistral', '[TOOL_CALLS][{"name": "rm_rf", "arguments": {}}]').calls).toEqual([]);
    expect(parse('mistral-args', '[TOOL_CALLS]rm_rf[ARGS]{}').calls).toEqual([]);
  });

  it('a <tool_call> block that is not JSON stays text; a later good one still counts', () => {
    const r = parse('hermes', '<tool_call>I would call it</tool_call> then <tool_call>{"name": "python", "arguments": {"code": "1"}}</tool_call>');
    expect(r.content).toBe('<tool_call>I would call it</tool_call> then');
    expect(calls(r)).toEqual([['python', { code: '1' }]]);
  });

  it('a Llama 3 call later in the reply is text (calls start the reply)', () => {
    const text = 'Sure: {"name": "special_function", "parameters": {"arg1": 1}}';
    expect(parse('llama3', text)).toEqual({ content: text, calls: [] });
  });
});

describe('broken or cut-off calls', () => {
  it('arguments that go wrong keep the raw text up to the end tag', () => {
    const r = parse('hermes', '<tool_call>\n{"name": "special_function", "arguments": {"arg1": tru}}\n</tool_call>after');
    expect(r.calls).toEqual([{ name: 'special_function', arguments: '{"arg1": tru}', done: false }]);
    expect(r.content).toBe('after');
  });

  it('a reply cut off inside the arguments is a call with what was written (finish_reason length)', () => {
    expect(parse('llama3', '{"name": "special_function", "parameters": {"arg1": 1')).toEqual({ content: '', calls: [{ name: 'special_function', arguments: '{"arg1": 1', done: false }] });
    expect(parse('mistral', '[TOOL_CALLS][{"name": "python", "arguments": {"code": "pri').calls).toEqual([{ name: 'python', arguments: '{"code": "pri', done: false }]);
  });

  it('a reply cut off before the name is text', () => {
    expect(parse('hermes', '<tool_call>\n{"na')).toEqual({ content: '<tool_call>\n{"na', calls: [] });
  });

  it('a call without arguments has {} once its object is whole', () => {
    expect(parse('hermes', '<tool_call>{"name": "python"}</tool_call>').calls).toEqual([{ name: 'python', arguments: '{}', done: true }]);
  });
});

describe('streaming', () => {
  /** Feeds text in pieces; returns the deltas' sum and checks their order. */
  function stream(format: ToolFormat, text: string, cut: (i: number) => number) {
    const s = new ToolCallStream({ format, names }, format === 'mistral' ? 'mistral9' : 'openai');
    const deltas: StreamDelta[] = [];
    for (let i = 0; i < text.length;) {
      const n = Math.max(1, cut(i));
      deltas.push(...s.push(text.slice(i, i + n)));
      i += n;
    }
    const fin = s.finish();
    deltas.push(...fin.deltas);
    let content = '';
    const args: string[] = [];
    const heads: { id: string; name: string }[] = [];
    for (const d of deltas) {
      if ('content' in d) content += d.content;
      else if ('name' in d) { expect(heads.length).toBe(d.index); heads.push({ id: d.id, name: d.name }); args[d.index] = ''; } else {
        expect(heads[d.index]).toBeDefined(); // arguments only after the call's header
        args[d.index] += d.arguments;
      }
    }
    return { content, args, heads, fin };
  }

  const replies: [ToolFormat, string][] = [
    ['hermes', `${CONTENT}\n<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}\n</tool_call>\n<tool_call>\n{"name": "special_function_with_opt", "arguments": {"arg1": 1, "arg2": "a \\"quoted\\" \\u00e9 <tool_call>"}}\n</tool_call>`],
    ['hermes', 'No calls here, just < and <tool and text.'],
    ['llama3', '{"name": "python", "parameters": {"code": "print(\'hi\')\\nx = [1, {\\"a\\": 2}]"}}'],
    ['llama3', '{"not": "a call"} and more'],
    ['mistral', `${CONTENT}[TOOL_CALLS][{"name": "special_function", "arguments": {"arg1": 1}, "id": "123456789"}, {"name": "python", "arguments": {"code": "1"}, "id": "abcdefghi"}]`],
    ['mistral-args', '[TOOL_CALLS]special_function[CALL_ID]000000001[ARGS]{"arg1": 1}[TOOL_CALLS]python[ARGS]{"code": "2"}'],
    ['granite', '<|tool_call|>[{"name": "python", "arguments": {"code": "x"}}]'],
    ['generic', '{"tool_calls": [{"name": "python", "arguments": {"code": "1"}}, {"name": "special_function", "arguments": {"arg1": 1}}]}'],
    ['generic', `{"response": ${JSON.stringify(`${CONTENT} \u00e9\t"q"`)}}`],
    ['hermes', '<tool_call>\n{"name": "special_function", "arguments": {"arg1": tru}}\n</tool_call>'],
  ];
  const cutters: [string, (i: number) => number][] = [
    ['one character at a time', () => 1],
    ['pieces of 1 to 7 characters', (i) => ((i * 7919) % 7) + 1],
    ['all at once', () => 1e9],
  ];
  for (const [format, text] of replies) {
    for (const [how, cut] of cutters) {
      it(`${format}, ${how}: the deltas add up to the final parse ${JSON.stringify(text.slice(0, 30))}`, () => {
        const final = parse(format, text);
        const s = stream(format, text, cut);
        expect(s.content).toBe(final.content);
        expect(s.heads.map((h) => h.name)).toEqual(final.calls.map((c) => c.name));
        expect(s.args).toEqual(final.calls.map((c) => c.arguments));
        // finish() reports the ids the header deltas announced.
        expect(s.fin.calls.map((c) => c.id)).toEqual(s.heads.map((h) => h.id));
        for (const [i, c] of final.calls.entries()) if (c.id) expect(s.heads[i].id).toBe(c.id);
      });
    }
  }

  it('announces a call as soon as its name is read, before the arguments end', () => {
    const s = new ToolCallStream({ format: 'hermes', names }, 'openai');
    expect(s.push('<tool_call>\n{"name": "spec')).toEqual([]);
    const d = s.push('ial_function", "arguments": {"arg1"');
    expect(d).toMatchObject([{ index: 0, name: 'special_function' }, { index: 0, arguments: '{"arg1"' }]);
    expect((d[0] as { id: string }).id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(s.push(': 1}}')).toEqual([{ index: 0, arguments: ': 1}' }]);
  });

  it('holds back text that may start a marker, and releases it when it does not', () => {
    const s = new ToolCallStream({ format: 'hermes', names }, 'openai');
    expect(s.push('a <tool_')).toEqual([{ content: 'a' }]);
    expect(s.push('box> b')).toEqual([{ content: ' <tool_box> b' }]);
  });

  it('Mistral ids are 9 letters or digits when the model writes none', () => {
    const s = new ToolCallStream({ format: 'mistral', names }, 'mistral9');
    s.push('[TOOL_CALLS][{"name": "python", "arguments": {"code": "1"}}]');
    expect(s.finish().calls[0].id).toMatch(/^[A-Za-z0-9]{9}$/);
  });
});

describe('scanJson', () => {
  it('reads complete values with their spans', () => {
    const text = ' {"a": [1, -2.5e3, "x\\u00e9"], "b": null} tail';
    const r = scanJson(text, 0);
    expect(r.error).toBeUndefined();
    expect(r.node).toMatchObject({ kind: 'object', start: 1, end: text.indexOf(' tail'), complete: true });
    const a = r.node?.kind === 'object' ? r.node.entries[0].value : undefined;
    expect(a?.kind === 'array' && a.items.map((n) => text.slice(n.start, n.end))).toEqual(['1', '-2.5e3', '"x\\u00e9"']);
  });

  it('marks a value cut by the end of the text as incomplete, with the string decoded so far', () => {
    const r = scanJson('{"a": "he\\u00', 0);
    expect(r.error).toBeUndefined();
    expect(r.node?.complete).toBe(false);
    const v = r.node?.kind === 'object' ? r.node.entries[0].value : undefined;
    expect(v).toMatchObject({ kind: 'string', complete: false, value: 'he' });
  });

  it('reports the first character that breaks JSON', () => {
    expect(scanJson('{"a": tru}', 0).error).toBe(6);
    expect(scanJson('[1, 2,]', 0).error).toBe(6);
    expect(scanJson('{"a": "x\ny"}', 0).error).toBe(8); // a raw newline inside a string
    expect(scanJson('01', 0).error).toBeUndefined(); // "0" then text that is no longer part of the value
  });

  it('refuses nesting deeper than 256 instead of overflowing the stack', () => {
    expect(scanJson('['.repeat(100_000), 0).error).toBeDefined();
  });
});
