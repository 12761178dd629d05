// Field checks shared by the dialects: every bad field is a 400 naming it, and
// values are quoted by preview() (a value nested 10k deep must not become a 500).
import type { ChatMessage } from '../api.ts';
import { apiError, badType, kindOf, preview } from './errors.ts';

export type Body = Record<string, unknown>;

/** The body as an object, or 400. */
export function asObject(body: unknown): Body {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw apiError(400, `request body must be a JSON object, got ${kindOf(body)}`, 'invalid_body');
  return body as Body;
}

/** `label`: the field's name in messages (e.g. options.temperature). */
export function optNumber(body: Body, key: string, r: { min: number; max: number; integer?: boolean }, field = key): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  const want = `${r.integer ? 'an integer' : 'a number'} in ${r.min}..${r.max}`;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badType(field, want, v);
  if ((r.integer && !Number.isInteger(v)) || v < r.min || v > r.max) throw apiError(400, `'${field}' must be ${want}, got ${v}`, 'invalid_value', field);
  return v;
}

export function optBool(body: Body, key: string, field = key): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badType(field, 'a boolean', v);
  return v;
}

export function parseStop(v: unknown, field = 'stop'): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw badType(field, 'a string or an array of strings', v);
  if (v.length > 16) throw apiError(400, `'${field}' has ${v.length} strings; at most 16 are allowed`, 'invalid_value', field);
  const list = (v as string[]).filter((s) => s !== '');
  return list.length ? list : undefined;
}

function parseContent(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (!Array.isArray(v)) throw badType(field, 'a string or an array of text parts', v);
  return v.map((part, j) => {
    const p = part as Body;
    if (!p || typeof p !== 'object' || p.type !== 'text' || typeof p.text !== 'string') {
      throw apiError(400, `'${field}[${j}]' is a ${p && typeof p === 'object' && 'type' in p ? preview(p.type) : kindOf(p)} part; only {type: "text", text} parts are supported`, 'invalid_value', `${field}[${j}]`);
    }
    return p.text;
  }).join('');
}

export function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined) throw apiError(400, "missing required field 'messages': send an array of {role, content}", 'missing_field', 'messages');
  if (!Array.isArray(v)) throw badType('messages', 'an array of {role, content}', v);
  if (v.length === 0) throw apiError(400, "'messages' is empty: send at least one message", 'invalid_value', 'messages');
  return v.map((m, i) => {
    const f = `messages[${i}]`;
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw badType(f, 'an object {role, content}', m);
    const { role, content } = m as Body;
    if (typeof role !== 'string') throw badType(`${f}.role`, 'a string', role);
    // `developer` is OpenAI's newer name for `system`.
    const r = role === 'developer' ? 'system' : role;
    if (r !== 'system' && r !== 'user' && r !== 'assistant') {
      throw apiError(400, `'${f}.role' is ${JSON.stringify(role)}; qllm supports system, developer, user and assistant`, 'invalid_value', `${f}.role`);
    }
    if (content === undefined && r !== 'assistant') throw apiError(400, `missing required field '${f}.content'`, 'missing_field', `${f}.content`);
    return { role: r, content: parseContent(content, `${f}.content`) };
  });
}

