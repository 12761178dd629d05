// Shared by the tool-call server tests: Qwen 2.5's chat template for the fake
// model (so the server renders tools into it and reads <tool_call> blocks back),
// a weather tool, and scripted replies keyed on what the prompt holds.
import { readFileSync } from 'node:fs';
import type { GenerateOptions } from '../../src/api.ts';
import type { TokenizerConfig } from '../../src/config.ts';
import { templateOf } from '../../src/serve/model-meta.ts';

const QWEN = readFileSync(new URL('../tools/templates/Qwen-Qwen2.5-7B-Instruct.jinja', import.meta.url), 'utf8');
export const qwenTemplate = () => templateOf({
  model: 'gpt2', pre: undefined, tokens: ['<|endoftext|>', '<|im_end|>'], scores: new Float32Array(2), tokenTypes: Int32Array.of(3, 3),
  merges: [], bosId: undefined, eosId: 1, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: QWEN,
} as TokenizerConfig);

export const WEATHER = { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city.', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } } as const;
const CALL = ['<tool_call>', '\n{"name": "get_weather", ', '"arguments": {"city": ', '"Paris"}}', '\n</tool_call>'];

/** Replies by what the prompt holds: a call for a weather question, an answer once the tool's result is in. */
export function script(prompt: string, _opts: GenerateOptions): string[] | undefined {
  if (prompt.includes('<tool_response>')) return ['It is', ' 21 °C', ' in Paris.'];
  if (prompt.includes('Weather in Paris?')) return CALL;
  if (prompt.includes('Explain first')) return ['Let me', ' check.', '\n', ...CALL];
  if (prompt.includes('Two calls')) return [...CALL, '\n', ...CALL];
  if (prompt.includes('Cut short')) return CALL.slice(0, 3);
  return undefined;
}
