// Which tool-call syntax a model writes, read off its chat template's source the
// way llama.cpp's common_chat_templates_apply picks a handler: each family's
// template spells out its own call markers.
//
//   llama3        {"name": "f", "parameters": {...}}  (at the start of the reply; an optional <|python_tag|> first)
//   hermes        <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>   (Qwen 2.5/3, Hermes 2/3, SmolLM3)
//   mistral       [TOOL_CALLS][{"name": "f", "arguments": {...}, "id": "a1b2c3d4e"}]   (Mistral 7B v0.3, Nemo, Small 3.0)
//   mistral-args  [TOOL_CALLS]f[CALL_ID]a1b2c3d4e[ARGS]{...}   (Mistral Small 3.1+, Devstral; [CALL_ID] only where the template has it)
//   granite       <|tool_call|>[{"name": "f", "arguments": {...}}]   (Granite 3.x)
//   harmony       <|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{...}<|call|>
//                 (gpt-oss: by its architecture, or a template that writes <|channel|>, as src/reasoning.ts decides)
//   generic       {"tool_call": {"name": "f", "arguments": {...}}} or {"response": "..."}   (any other template:
//                 llama.cpp's generic handling, with the tools described in the system prompt when the template cannot)

export type ToolFormat = 'llama3' | 'hermes' | 'mistral' | 'mistral-args' | 'granite' | 'harmony' | 'generic';

/** `arch`: the model's architecture (gpt-oss writes harmony whatever its template). */
export function detectToolFormat(src: string | undefined, arch?: string): ToolFormat {
  // The same test as reasoningSyntax: the reasoning splitter hands harmony calls on to this format's parser.
  if (arch === 'gpt-oss' || src?.includes('<|channel|>')) return 'harmony';
  if (!src) return 'generic';
  if (src.includes('[TOOL_CALLS]')) return src.includes('[ARGS]') ? 'mistral-args' : 'mistral';
  // Qwen3-Coder's XML calls (<function=…><parameter=…>) also sit in <tool_call> tags: not this JSON syntax.
  if (src.includes('<tool_call>')) return src.includes('<function=') && src.includes('<parameter=') ? 'generic' : 'hermes';
  if (src.includes('<|tool_call|>')) return 'granite';
  if (src.includes('<|start_header_id|>ipython<|end_header_id|>')) return 'llama3';
  return 'generic';
}

/** Mistral's templates refuse any tool-call id that is not 9 letters or digits. */
export const idPattern = (format: ToolFormat, src: string | undefined) =>
  format === 'mistral' || (format === 'mistral-args' && !!src?.includes('[CALL_ID]')) ? 'mistral9' : 'openai';

/** Markers a format writes, which may be control tokens the decoder prints as nothing. */
export function formatMarkers(format: ToolFormat): string[] {
  switch (format) {
    case 'llama3': return ['<|python_tag|>'];
    case 'hermes': return ['<tool_call>', '</tool_call>'];
    case 'mistral': return ['[TOOL_CALLS]'];
    case 'mistral-args': return ['[TOOL_CALLS]', '[CALL_ID]', '[ARGS]'];
    case 'granite': return ['<|tool_call|>'];
    // Harmony's markers are always rendered (tokenizer/special.ts), and <|call|> ends generation unseen.
    case 'harmony': return [];
    case 'generic': return [];
  }
}
