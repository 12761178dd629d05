// Chat templates rendered with tools (src/tokenizer/chat.ts + src/tools/render.ts),
// on the real templates in llama.cpp's models/templates, against hand-checked
// prompts: what llama.cpp (and transformers) pass a template — tools as
// {type, function: {name, description, parameters}}, assistant tool_calls with
// object arguments, role 'tool' with tool_call_id/name — and minja's polyfills
// where a template cannot show them. The templates are copies of llama.cpp's
// models/templates (test/tools/templates).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ChatMessage, Tool } from '../../src/api.ts';
import type { TokenizerConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { renderChat, toolCaps } from '../../src/tokenizer/chat.ts';

const T = (name: string) => readFileSync(new URL(`./templates/${name}.jinja`, import.meta.url), 'utf8');

const tc = (chatTemplate: string | undefined, bos = '<s>', eos = '</s>'): TokenizerConfig => ({
  model: 'llama', pre: undefined, tokens: ['<unk>', bos, eos], scores: new Float32Array(3), tokenTypes: Int32Array.of(2, 3, 3),
  merges: [], bosId: 1, eosId: 2, unkId: 0, padId: undefined, eotId: undefined, addBos: true, addEos: false, chatTemplate,
});
const now = new Date(2024, 6, 26);
const tools: Tool[] = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather in a city.', parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name.' } }, required: ['city'] } } }];
/** A tool loop: question, the call, its result. */
const loop: ChatMessage[] = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: '', toolCalls: [{ id: 'a1b2c3d4e', name: 'get_weather', arguments: '{"city": "Paris"}' }] },
  { role: 'tool', toolCallId: 'a1b2c3d4e', name: 'get_weather', content: '{"temp_c": 21}' },
];
const render = (src: string | undefined, messages: ChatMessage[], bos = '<s>', withTools = true) =>
  renderChat(tc(src, bos), messages, { addGenerationPrompt: true, now, ...(withTools ? { tools } : {}) }).text;

const LLAMA3_TOOLS = `Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string",
                    "description": "City name."
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

`;
const LLAMA3_LOOP = `<|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

<|eot_id|><|start_header_id|>user<|end_header_id|>

${LLAMA3_TOOLS}Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>

"{\\"temp_c\\": 21}"<|eot_id|><|start_header_id|>assistant<|end_header_id|>

`;

const QWEN_SYSTEM_TOOLS = `# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name."}}, "required": ["city"]}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
`;
const QWEN_LOOP = `<|im_start|>system
You are Qwen, created by Alibaba Cloud. You are a helpful assistant.

${QWEN_SYSTEM_TOOLS}<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
{"temp_c": 21}
</tool_response><|im_end|>
<|im_start|>assistant
`;

describe('templates with tools', () => {
  it('Llama 3.1: tools in the first user message, the call as {"name", "parameters"}, the result as ipython', () => {
    expect(render(T('meta-llama-Llama-3.1-8B-Instruct'), loop, '<|begin_of_text|>')).toBe(LLAMA3_LOOP);
  });

  it('Llama 3.2: the same prompt', () => {
    expect(render(T('meta-llama-Llama-3.2-3B-Instruct'), loop, '<|begin_of_text|>')).toBe(LLAMA3_LOOP);
  });

  it('Llama 3.2 with a system message and no tool history', () => {
    const text = render(T('meta-llama-Llama-3.2-3B-Instruct'), [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], '<|begin_of_text|>');
    expect(text).toBe(`<|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>

${LLAMA3_TOOLS}Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>

`);
  });

  it('Qwen 2.5: tools in the system prompt, <tool_call> and <tool_response>', () => {
    expect(render(T('Qwen-Qwen2.5-7B-Instruct'), loop)).toBe(QWEN_LOOP);
  });

  it('Qwen 3: the same tools section after the system message', () => {
    const text = render(T('Qwen-Qwen3-0.6B'), [{ role: 'system', content: 'Be brief.' }, ...loop]);
    expect(text.startsWith(`<|im_start|>system\nBe brief.\n\n${QWEN_SYSTEM_TOOLS}<|im_start|>user\nWeather in Paris?<|im_end|>\n`)).toBe(true);
    expect(text).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>');
    expect(text.endsWith('<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n')).toBe(true);
  });

  it('Mistral Nemo: [AVAILABLE_TOOLS] before the last user message, [TOOL_CALLS] with the 9-character id, [TOOL_RESULTS]', () => {
    const text = render(T('mistralai-Mistral-Nemo-Instruct-2407'), [...loop, { role: 'assistant', content: 'It is 21 °C in Paris.' }, { role: 'user', content: 'And Lyon?' }]);
    expect(text).toBe('[INST]Weather in Paris?[/INST]'
      + '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]</s>'
      + '[TOOL_RESULTS]{"content": {"temp_c": 21}, "call_id": "a1b2c3d4e"}[/TOOL_RESULTS]'
      + 'It is 21 °C in Paris.</s>'
      + '[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name."}}, "required": ["city"]}}}][/AVAILABLE_TOOLS]'
      + '[INST]And Lyon?[/INST]');
  });

  it('Hermes 2 Pro (tool_use): tools as Python signatures, role tool kept', () => {
    const text = render(T('NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use'), loop);
    expect(text).toContain('Here are the available tools: <tools> {"type": "function", "function": {"name": "get_weather", "description": "get_weather(city: str) - Current weather in a city.\n\n    Args:\n        city(str): City name."');
    expect(text.endsWith('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n<|im_start|>tool\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|><|im_start|>assistant\n')).toBe(true);
  });

  it('tool choice none (no tools given): the template shows no tools, the history still renders', () => {
    const text = render(T('Qwen-Qwen2.5-7B-Instruct'), loop, '<s>', false);
    expect(text).not.toContain('# Tools');
    expect(text).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>');
  });

  it('probes what each template can show', () => {
    const all = { tools: true, toolCalls: true, objectArguments: true, toolResponses: true };
    for (const name of ['meta-llama-Llama-3.1-8B-Instruct', 'meta-llama-Llama-3.2-3B-Instruct', 'Qwen-Qwen2.5-7B-Instruct', 'Qwen-Qwen3-0.6B', 'mistralai-Mistral-Nemo-Instruct-2407', 'NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use']) {
      expect([name, toolCaps(T(name))]).toEqual([name, all]);
    }
    expect(toolCaps(T('google-gemma-2-2b-it'))).toEqual({ tools: false, toolCalls: false, objectArguments: false, toolResponses: false });
    // Granite 3.3 lists tools but prints only an assistant message's content.
    expect(toolCaps(T('ibm-granite-granite-3.3-2B-Instruct'))).toMatchObject({ tools: true, toolCalls: false });
  });
});

describe('templates that cannot show tools (generic fallback, as minja polyfills)', () => {
  const TOOLS_PROMPT = `You can call any of the following tools to satisfy the user's requests: ${JSON.stringify([{ type: 'function', function: tools[0].function }], null, 2)}`;
  const CALL_JSON = '{\n  "tool_calls": [\n    {\n      "name": "get_weather",\n      "arguments": {\n        "city": "Paris"\n      },\n      "id": "a1b2c3d4e"\n    }\n  ]\n}';
  const RESULT_JSON = '{\n  "tool_response": {\n    "tool": "get_weather",\n    "content": "{\\"temp_c\\": 21}",\n    "tool_call_id": "a1b2c3d4e"\n  }\n}';

  it('the built-in default template: tools in a system prompt, the call as JSON content, the result as a user message', () => {
    const text = renderChat(tc(undefined), loop, { addGenerationPrompt: true, tools, system: ['Respond in JSON.'] }).text;
    expect(text).toBe(`Respond in JSON.\n\n${TOOLS_PROMPT}\n\nUser: Weather in Paris?\nAssistant: ${CALL_JSON}\nUser: ${RESULT_JSON}\nAssistant:`);
  });

  it('Gemma 2 (no system role): the tool prompt joins the user\'s system text in the first user turn', () => {
    const text = render(T('google-gemma-2-2b-it'), [{ role: 'system', content: 'Be brief.' }, ...loop]);
    expect(text).toBe(`<start_of_turn>user\nBe brief.\n\n${TOOLS_PROMPT}\nWeather in Paris?<end_of_turn>\n`
      + `<start_of_turn>model\n${CALL_JSON}<end_of_turn>\n<start_of_turn>user\n${RESULT_JSON}<end_of_turn>\n<start_of_turn>model\n`);
  });

  it('an assistant turn with text and a call keeps both', () => {
    const text = renderChat(tc(undefined), [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'x', name: 'f', arguments: '{}' }] }], { addGenerationPrompt: false }).text;
    expect(text).toContain('"content": "Checking."');
  });
});

describe('bad tool fields', () => {
  it('refuses arguments that are not JSON where the template needs an object, in one line', () => {
    const bad: ChatMessage[] = [{ role: 'user', content: 'q' }, { role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'f', arguments: '{city: Paris' }] }];
    const e = (() => { try { renderChat(tc(T('Qwen-Qwen2.5-7B-Instruct')), bad, { addGenerationPrompt: true }); } catch (x) { return x as Error; } })();
    expect(e).toBeInstanceOf(UsageError);
    expect(e?.message).toMatch(/message 1 tool call 0 \(f\): arguments are not JSON/);
    expect(e?.message).not.toContain('\n');
  });

  it('refuses tool calls on a non-assistant message and non-string arguments', () => {
    expect(() => renderChat(tc(undefined), [{ role: 'user', content: 'q', toolCalls: [{ id: 'a', name: 'f', arguments: '{}' }] }], { addGenerationPrompt: true })).toThrow(/only assistant messages make tool calls/);
    const obj = [{ role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'f', arguments: { x: 1 } }] }] as unknown as ChatMessage[];
    expect(() => renderChat(tc(undefined), obj, { addGenerationPrompt: true })).toThrow(/arguments must be JSON text/);
  });
});
