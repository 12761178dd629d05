// Chat messages -> prompt text through the model's Jinja chat template
// (tokenizer.chat_template), rendered with @huggingface/jinja the way transformers does:
// context { messages, add_generation_prompt, bos_token, eos_token } (raise_exception is built in).
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from '../api.ts';
import type { TokenizerConfig } from '../config.ts';
import { UsageError } from '../errors.ts';

/**
 * Used when the GGUF has no chat template. Such a model is almost always a base
 * (non-chat) model: it has never seen ChatML's <|im_start|> control tokens, which its
 * vocabulary would spell out as a dozen meaningless pieces. A plain "User:/Assistant:"
 * transcript is text any vocabulary encodes compactly and a base model can continue,
 * so it is the least surprising default. The caller is told (usedDefault) so it can
 * say so.
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n\n" +
  "{% elif m.role == 'user' %}{{ 'User: ' + m.content }}\n" +
  "{% else %}{{ 'Assistant: ' + m.content }}\n{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}Assistant:{% endif %}";

export interface RenderedChat {
  text: string;
  /** True when the model had no template and DEFAULT_CHAT_TEMPLATE was used. */
  usedDefault: boolean;
  /**
   * Whether the caller should still prepend BOS when encoding `text`: the model's
   * add_bos_token, unless the template already wrote the BOS token's text itself.
   */
  addBos: boolean;
}

const ROLES = new Set(['system', 'user', 'assistant']);

/** One line: template errors can carry newlines and source excerpts. */
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

export function renderChat(tc: TokenizerConfig, messages: ChatMessage[], opts: { addGenerationPrompt: boolean }): RenderedChat {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new UsageError('chat needs at least one message: pass [{ role: "user", content: "..." }]');
  }
  messages.forEach((m, i) => {
    if (!m || !ROLES.has(m.role)) throw new UsageError(`message ${i} has role ${JSON.stringify(m?.role)}: use 'system', 'user' or 'assistant'`);
    if (typeof m.content !== 'string') throw new UsageError(`message ${i} (${m.role}) has no string content: pass content as a string`);
  });
  const usedDefault = tc.chatTemplate === undefined || tc.chatTemplate.trim() === '';
  const src = usedDefault ? DEFAULT_CHAT_TEMPLATE : (tc.chatTemplate as string);
  const tokenText = (id: number | undefined) => (id !== undefined && id >= 0 && id < tc.tokens.length ? tc.tokens[id] : '');
  const bos = tokenText(tc.bosId);
  const eos = tokenText(tc.eosId);

  let template: Template;
  try {
    template = new Template(src);
  } catch (e) {
    throw new UsageError(`the model's chat template does not parse (${oneLine(String((e as Error).message ?? e))}): use generate() with a plain prompt instead of chat`);
  }
  let text: string;
  try {
    text = template.render({
      // Plain copies: templates may index and slice but must not see our objects.
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: opts.addGenerationPrompt,
      bos_token: bos,
      eos_token: eos,
    });
  } catch (e) {
    throw new UsageError(`the model's chat template failed to render (${oneLine(String((e as Error).message ?? e))}): use generate() with a plain prompt instead of chat`);
  }
  return { text, usedDefault, addBos: tc.addBos && !(bos !== '' && text.startsWith(bos)) };
}
