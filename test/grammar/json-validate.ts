// A small JSON Schema validator for the subset the grammar tests use, written
// independently of the converter: it checks the *meaning* of the schema, so a
// converter bug cannot agree with itself. Returns the first problem, or ''.
type S = Record<string, unknown>;

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const FORMATS: Record<string, RegExp> = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  time: /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
};

export function validate(v: unknown, schema: unknown, root: unknown = schema, at = '$'): string {
  if (schema === true || schema === undefined) return '';
  if (schema === false) return `${at}: false schema`;
  const s = schema as S;
  if (typeof s.$ref === 'string') {
    let t: unknown = root;
    for (const k of s.$ref.slice(2).split('/')) t = (t as S)[k];
    return validate(v, t, root, at);
  }
  if (s.anyOf || s.oneOf) {
    const alts = (s.anyOf ?? s.oneOf) as unknown[];
    const ok = alts.filter((a) => validate(v, a, root, at) === '').length;
    if (s.oneOf ? ok !== 1 : ok === 0) return `${at}: ${ok} of the ${s.oneOf ? 'oneOf' : 'anyOf'} alternatives match`;
  }
  if ('const' in s && JSON.stringify(v) !== JSON.stringify(s.const)) return `${at}: not the const`;
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) return `${at}: not in the enum`;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const t = typeOf(v);
    if (!types.some((x) => x === t || (x === 'integer' && Number.isInteger(v)))) return `${at}: ${t} is not ${types.join('|')}`;
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (typeof s.minLength === 'number' && n < s.minLength) return `${at}: shorter than ${s.minLength}`;
    if (typeof s.maxLength === 'number' && n > s.maxLength) return `${at}: longer than ${s.maxLength}`;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) return `${at}: does not match ${s.pattern}`;
    if (typeof s.format === 'string' && FORMATS[s.format] && !FORMATS[s.format].test(v)) return `${at}: not a ${s.format}`;
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) return `${at}: below ${s.minimum}`;
    if (typeof s.maximum === 'number' && v > s.maximum) return `${at}: above ${s.maximum}`;
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) return `${at}: not above ${s.exclusiveMinimum}`;
    if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum) return `${at}: not below ${s.exclusiveMaximum}`;
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return `${at}: fewer than ${s.minItems} items`;
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return `${at}: more than ${s.maxItems} items`;
    for (const [i, x] of v.entries()) {
      const e = validate(x, s.items, root, `${at}[${i}]`);
      if (e) return e;
    }
  }
  if (typeOf(v) === 'object') {
    const o = v as S;
    const props = (s.properties ?? {}) as S;
    for (const r of (s.required ?? []) as string[]) if (!(r in o)) return `${at}: missing ${r}`;
    for (const [k, x] of Object.entries(o)) {
      const e = k in props ? validate(x, props[k], root, `${at}.${k}`) : validate(x, s.additionalProperties, root, `${at}.${k}`);
      if (e) return e;
    }
  }
  return '';
}

/** A schema with every kind of constraint, each bounded so random sampling always finishes. */
export const STRICT = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 8 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    score: { type: 'number', minimum: -1, maximum: 1 },
    tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
    ok: { type: 'boolean' },
    kind: { anyOf: [{ const: 'x' }, { type: 'null' }] },
    when: { type: 'string', format: 'date' },
    id: { type: 'string', pattern: '^[A-Z]{2}-\\d{3}$' },
    note: { type: 'string', maxLength: 4 },
  },
  required: ['name', 'age', 'score', 'tags', 'ok', 'kind', 'when', 'id'],
  additionalProperties: false,
};
