// Chat messages -> prompt text through the model's Jinja chat template
// (tokenizer.chat_template), rendered with @huggingface/jinja the way llama.cpp renders
// it in Jinja mode (common/chat.cpp, common_chat_templates_apply_jinja):
// - context { messages, add_generation_prompt (only when true), bos_token, eos_token,
//   enable_thinking: true, datetime, date_string } (raise_exception is built in);
// - a template that never reads a system message's content gets the system text folded
//   into the first user message ("<system>\n<user>"), as llama.cpp's caps probe decides;
// - a BOS (EOS) text the template writes at the start (end) is dropped when the
//   tokenizer adds BOS (EOS) itself, so the text equals llama.cpp's prompt;
// - tools go in the context as `tools`, assistant tool calls as `tool_calls`, tool
//   results as role 'tool' with tool_call_id/name; what a template cannot show is
//   polyfilled as minja does (src/tools/render.ts) after a probe (toolCaps).
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import type { ChatMessage, Tool } from '../api.ts';
import type { TokenizerConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import { checkToolFields, type ToolCaps, templateMessages, templateTools, toolsPrompt } from '../tools/render.ts';

/**
 * Used when the GGUF has no chat template. Such a model is almost always a base
 * (non-chat) model: it has never seen ChatML's <|im_start|> control tokens, which its
 * vocabulary would spell out as a dozen meaningless pieces. A plain "User:/Assistant:"
 * transcript is text any vocabulary encodes compactly and a base model can continue,
 * so it is the least surprising default. The caller is told (usedDefault) so it can
 * say so. (llama.cpp falls back to ChatML here.)
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
   * Whether the caller should prepend BOS when encoding `text`: the model's
   * add_bos_token (a BOS text the template wrote first has then been removed from `text`).
   */
  addBos: boolean;
}

export interface RenderOptions {
  addGenerationPrompt: boolean;
  /** The date templates see as date_string/datetime (Llama 3.1's "Today Date"). Default: now. */
  now?: Date;
  /**
   * Work cap for the render, in interpreter steps (each expression, statement and
   * ~256 characters of output is one). A template is code from the model file; one
   * that loops range(1e6) must fail fast, not block the process. Default
   * 50,000 + 200 per message + 1 per 64 characters of content (real templates use
   * under 50 per message).
   */
  maxSteps?: number;
  /** Longest string the template may build (e.g. what the context can hold). Default 16M characters. */
  maxChars?: number;
  /** Functions the model may call (src/tools planTools: none when tool choice is 'none'). */
  tools?: Tool[];
  /** Instructions added to the system prompt (the generic tool-call format's). */
  system?: string[];
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/** One line: template errors can carry newlines and source excerpts. */
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

export function renderChat(tc: TokenizerConfig, messages: ChatMessage[], opts: RenderOptions): RenderedChat {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new UsageError('chat needs at least one message: pass [{ role: "user", content: "..." }]');
  }
  messages.forEach((m, i) => {
    if (!m || !ROLES.has(m.role)) throw new UsageError(`message ${i} has role ${JSON.stringify(m?.role)}: use 'system', 'user' or 'assistant' (or 'tool' for a tool's result)`);
    if (typeof m.content !== 'string') throw new UsageError(`message ${i} (${m.role}) has no string content: pass content as a string`);
    checkToolFields(m, i);
    if (m.reasoning !== undefined && typeof m.reasoning !== 'string') throw new UsageError(`message ${i} (${m.role}) reasoning must be a string`);
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
  const tools = opts.tools?.length ? opts.tools : undefined;
  const withTools = tools !== undefined || messages.some((m) => m.role === 'tool' || m.toolCalls?.length);
  const caps = withTools ? toolCaps(src, template) : NO_TOOLS;
  // Plain copies: templates may index and slice but must not see our objects.
  let msgs = templateMessages(messages, caps, [...(opts.system ?? []), ...(tools && !caps.tools ? [toolsPrompt(tools)] : [])]);
  addReasoning(msgs, messages, src);
  if (msgs[0].role === 'system' && !readsSystemContent(src, template)) {
    // llama.cpp's workaround::system_message_not_supported.
    msgs = msgs.length > 1 ? [{ ...msgs[1], content: `${msgs[0].content}\n${msgs[1].content}` }, ...msgs.slice(2)] : [];
  }
  const now = opts.now ?? new Date();
  const ctx: Record<string, unknown> = {
    messages: msgs,
    bos_token: bos,
    eos_token: eos,
    enable_thinking: true,
    datetime: `${MONTHS[now.getMonth()]} ${pad2(now.getDate())} ${now.getFullYear()}`, // strftime %b %d %Y
    date_string: `${pad2(now.getDate())} ${MONTHS[now.getMonth()]} ${now.getFullYear()}`, // %d %b %Y
  };
  if (tools && caps.tools) ctx.tools = templateTools(tools);
  // llama.cpp leaves add_generation_prompt undefined rather than false (templates test `is defined`).
  if (opts.addGenerationPrompt) ctx.add_generation_prompt = true;
  const chars = msgs.reduce((n, m) => n + String(m.content).length, 0) + (tools ? JSON.stringify(ctx.tools ?? []).length : 0);
  const steps = opts.maxSteps ?? 50_000 + 200 * msgs.length + Math.ceil(chars / 64);
  let text: string;
  try {
    text = bounded(steps, opts.maxChars ?? DEFAULT_MAX_CHARS, () => template.render(ctx));
  } catch (e) {
    if (e instanceof TemplateBudget) throw new UsageError(`${e.message} (${msgs.length} messages)`);
    throw new UsageError(`the model's chat template failed to render (${oneLine(String((e as Error).message ?? e))}): use generate() with a plain prompt instead of chat`);
  }
  if (tc.addBos && bos !== '' && text.startsWith(bos)) text = text.slice(bos.length);
  if (tc.addEos && eos !== '' && text.endsWith(eos)) text = text.slice(0, -eos.length);
  return { text, usedDefault, addBos: tc.addBos };
}

const DEFAULT_MAX_CHARS = 1 << 24;

/**
 * An assistant turn's thinking, as llama.cpp passes it: reasoning_content (Qwen3,
 * DeepSeek-R1 read it), and for gpt-oss's harmony template also `thinking`, which
 * refuses content beside tool calls. The templates decide what to show: most
 * drop the thinking of turns before the last user message.
 */
function addReasoning(msgs: Record<string, unknown>[], messages: ChatMessage[], src: string): void {
  const off = msgs.length - messages.length; // 1 when a system message was put first
  const harmony = src.includes('<|channel|>');
  messages.forEach((m, i) => {
    if (m.role !== 'assistant' || !m.reasoning) return;
    const o = msgs[i + off];
    o.reasoning_content = m.reasoning;
    if (!harmony) return;
    o.thinking = m.reasoning;
    if (m.toolCalls?.length) delete o.content;
  });
}

class TemplateBudget extends Error {}

/**
 * Runs `render` with the interpreter's evaluate() counting steps (and charging
 * long string results by length) and a global range() that refuses lists longer
 * than the budget. @huggingface/jinja has no limits of its own; the prototypes
 * are patched only for this synchronous call and put back before returning.
 */
function bounded<T>(maxSteps: number, maxChars: number, render: () => T): T {
  const proto = Interpreter.prototype as unknown as { evaluate(s: unknown, e: unknown): { value?: unknown } };
  const evaluate = proto.evaluate;
  const envProto = Environment.prototype as unknown as { set(name: string, value: unknown): unknown };
  const set = envProto.set;
  let steps = 0;
  const spend = (n: number) => {
    steps += n;
    if (steps > maxSteps) throw new TemplateBudget(`the model's chat template did more than ${maxSteps} steps of work (a loop that does not end?): send fewer messages, or use a plain prompt instead of chat`);
  };
  proto.evaluate = function (this: unknown, statement: unknown, env: unknown) {
    spend(1);
    const v = evaluate.call(this, statement, env);
    if (typeof v?.value === 'string') {
      const n = v.value.length;
      if (n > maxChars) throw new TemplateBudget(`the model's chat template built a string of over ${maxChars} characters, more than the context can hold: send fewer or shorter messages`);
      if (n >= 256) spend(n >> 8);
    }
    return v;
  };
  // The library's range() builds its whole list at once: range(1e9) would exhaust memory in one step.
  const range = (start: number, stop?: number, step = 1) => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() step must not be zero');
    const n = Math.max(0, Math.ceil((stop - start) / step));
    spend(n);
    return Array.from({ length: n }, (_, i) => start + i * step);
  };
  envProto.set = function (this: unknown, name: string, value: unknown) {
    return set.call(this, name, name === 'range' && typeof value === 'function' ? range : value);
  };
  try {
    return render();
  } finally {
    proto.evaluate = evaluate;
    envProto.set = set;
  }
}

const systemSupport = new Map<string, boolean>();

/**
 * llama.cpp's caps probe (common/jinja/caps.cpp): render [system, user] and see whether
 * the template ever reads the system message's content (Phi-3 and Gemma never do; Gemma
 * raises first). @huggingface/jinja keeps no usage stats, so the probe watches the
 * content lookups on that message's runtime object while it renders: synchronous, and
 * the library's Environment.set is put back before returning.
 */
export function readsSystemContent(src: string, template: Template = new Template(src)): boolean {
  const cached = systemSupport.get(src);
  if (cached !== undefined) return cached;
  let used = false;
  const watch = (messages: unknown) => {
    const map = (messages as { value?: { value?: unknown }[] }).value?.[0]?.value;
    if (!(map instanceof Map)) return;
    const get = map.get.bind(map);
    map.get = (k: unknown) => {
      if (k === 'content') used = true;
      return get(k);
    };
    // Iterating the message (items(), tojson) reaches the content too.
    for (const name of ['entries', 'values', 'forEach', Symbol.iterator] as const) {
      const f = (map as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>)[name].bind(map);
      Object.defineProperty(map, name, { value: (...a: unknown[]) => { used = true; return f(...a); } });
    }
  };
  const proto = Environment.prototype as unknown as { set(name: string, value: unknown): unknown };
  const set = proto.set;
  proto.set = function (this: unknown, name: string, value: unknown) {
    const v = set.call(this, name, value);
    if (name === 'messages') watch(v);
    return v;
  };
  try {
    bounded(50_000, DEFAULT_MAX_CHARS, () => template.render({
      messages: [{ role: 'system', content: 'System message' }, { role: 'user', content: 'User message' }],
      tools: [], bos_token: '', eos_token: '', add_generation_prompt: true,
    }));
  } catch {
    // As in llama.cpp, a template that fails here simply did not read the content.
  } finally {
    proto.set = set;
  }
  if (systemSupport.size > 64) systemSupport.clear();
  systemSupport.set(src, used);
  return used;
}

const NO_TOOLS: ToolCaps = { tools: false, toolCalls: false, objectArguments: false, toolResponses: false };
const toolSupport = new Map<string, ToolCaps>();

/**
 * What a template shows of tools, by rendering probes with needles and looking
 * for them in the output (minja's capability probe; llama.cpp's caps.cpp watches
 * the same reads). The call id is 9 characters: Mistral's templates raise on any other.
 */
export function toolCaps(src: string, template: Template = new Template(src)): ToolCaps {
  const cached = toolSupport.get(src);
  if (cached) return cached;
  const run = (messages: object[], tools: object[]): string => {
    try {
      return bounded(50_000, DEFAULT_MAX_CHARS, () => template.render({ messages, tools, bos_token: '', eos_token: '' }));
    } catch {
      return ''; // a template that fails on a probe cannot show that part
    }
  };
  const user = { role: 'user', content: 'Hey' };
  const call = (args: unknown) => ({ role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'probe_call_name', arguments: args }, id: '123456789' }] });
  // Every probe passes tools: some templates loop over them unguarded (Hermes 2 Pro's tool_use).
  const probeTools = [{ type: 'function', function: { name: 'probe_tool_name', description: 'A probe.', parameters: { type: 'object', properties: { arg: { type: 'string', description: 'An argument.' } }, required: ['arg'] } } }];
  const tools = run([user], probeTools).includes('probe_tool_name');
  const objectArguments = run([user, call({ argument_needle: 'x' })], probeTools).includes('argument_needle');
  const toolCalls = objectArguments || run([user, call('{"argument_needle": "x"}')], probeTools).includes('argument_needle');
  const args = objectArguments ? { arg: 'x' } : '{"arg": "x"}';
  // A template that prints any role's content would show the result, but not as a tool result: it must know the role.
  const toolResponses = /["']tool["']|tool_call_id|ipython|tool_response/.test(src)
    && run([user, call(args), { role: 'tool', content: 'response_needle', tool_call_id: '123456789', name: 'probe_call_name' }], probeTools).includes('response_needle');
  const caps = { tools, toolCalls, objectArguments, toolResponses };
  if (toolSupport.size > 64) toolSupport.clear();
  toolSupport.set(src, caps);
  return caps;
}
