// JSON Schema -> GBNF, a port of llama.cpp's common/json-schema-to-grammar.cpp (same
// rule names and text where the behaviour is the same), stricter where llama.cpp
// would let through output that does not validate:
//   - keywords a grammar cannot enforce (not, if/then/else, uniqueItems, multipleOf,
//     patternProperties, minProperties, contains, ...) are a UsageError, not ignored;
//   - keywords combined in ways the conversion cannot honour together (a pattern
//     with minLength, $ref or anyOf beside other constraints) are a UsageError;
//   - unsupported patterns are a UsageError (llama.cpp falls back to any string);
//     patterns are matched against the JSON-escaped string content (regex.ts);
//   - numbers honour minimum/maximum (integer bounds); `required` names missing
//     from `properties` are still emitted; allOf merges its parts' keywords.
// Output is always a subset of what the schema allows: additional properties are
// omitted unless allowed explicitly (as llama.cpp does), oneOf is matched as anyOf,
// maxLength/maxItems above the grammar's count limit are capped. Formats other than
// date, time, date-time and uuid are annotations (plain strings).
import { UsageError } from '../errors.ts';
import { MAX_COUNT, patternToGbnf } from './regex.ts';
import { buildMinMaxInt, numberRange } from './schema-numbers.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const SPACE_RULE = String.raw`| " " | "\n"{1,2} [ \t]{0,20}`;
const PRIMITIVES: Record<string, [string, string[]]> = {
  boolean: ['("true" | "false")', []],
  'decimal-part': ['[0-9]{1,16}', []],
  'integral-part': ['[0] | [1-9] [0-9]{0,15}', []],
  number: ['("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)?', ['integral-part', 'decimal-part']],
  integer: ['("-"? integral-part)', ['integral-part']],
  value: ['object | array | string | number | boolean | null', ['object', 'array', 'string', 'number', 'boolean', 'null']],
  object: ['"{" space ( string ":" space value ("," space string ":" space value)* )? space "}"', ['string', 'value']],
  array: ['"[" space ( value ("," space value)* )? space "]"', ['value']],
  uuid: [String.raw`"\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\""`, []],
  char: [String.raw`[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})`, []],
  string: [String.raw`"\"" char* "\""`, ['char']],
  null: ['"null"', []],
};
const FORMATS: Record<string, [string, string[]]> = {
  date: ['[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )', []],
  time: ['([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )', []],
  'date-time': ['date "T" time', ['date', 'time']],
  'date-string': [String.raw`"\"" date "\""`, ['date']],
  'time-string': [String.raw`"\"" time "\""`, ['time']],
  'date-time-string': [String.raw`"\"" date-time "\""`, ['date-time']],
};
const RESERVED = new Set(['root', ...Object.keys(PRIMITIVES), ...Object.keys(FORMATS)]);

/** Keywords no grammar here can enforce: refused wherever they appear. */
const UNSUPPORTED = ['not', 'if', 'then', 'else', 'multipleOf', 'patternProperties', 'propertyNames', 'minProperties', 'maxProperties',
  'dependentRequired', 'dependentSchemas', 'dependencies', 'contains', 'minContains', 'maxContains', 'unevaluatedProperties',
  'unevaluatedItems', '$dynamicRef', '$recursiveRef'];
/** Keywords that constrain a value of one type (ignored when the value has another type). */
const BY_TYPE: Record<string, string[]> = {
  string: ['minLength', 'maxLength', 'pattern'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  array: ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems'],
  object: ['properties', 'required', 'additionalProperties'],
};
const GENERIC = ['$ref', 'anyOf', 'oneOf', 'allOf', 'const', 'enum', 'type'];

const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const formatLiteral = (s: string) => `"${s.replace(/[\r\n"\\]/g, (c) => ({ '\r': '\\r', '\n': '\\n', '"': '\\"', '\\': '\\\\' })[c]!)}"`;

/** Converts a JSON schema (object or JSON text) to GBNF. Throws UsageError naming the schema path. */
export function jsonSchemaToGbnf(schema: unknown): string {
  let s = schema;
  if (typeof s === 'string') {
    try {
      s = JSON.parse(s);
    } catch (e) {
      throw new UsageError(`the JSON schema is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (!isObj(s) && typeof s !== 'boolean') throw new UsageError(`a JSON schema must be an object (or true), not ${Array.isArray(s) ? 'an array' : typeof s}`);
  const c = new SchemaConverter(s as Obj | boolean);
  c.visit(s as Obj | boolean, '', '');
  return c.format();
}

class SchemaConverter {
  private readonly rules = new Map<string, string>([['space', SPACE_RULE]]);
  private readonly refs = new Map<string, Json>();
  private readonly resolving = new Set<string>();

  constructor(private readonly root: Obj | boolean) {
    this.collectRefs(root, '');
  }

  format(): string {
    return [...this.rules.keys()].sort().map((k) => `${k} ::= ${this.rules.get(k)}\n`).join('');
  }

  addRule(name: string, rule: string): string {
    const esc = name.replace(/[^a-zA-Z0-9-]+/g, '-');
    if (!this.rules.has(esc) || this.rules.get(esc) === rule) {
      this.rules.set(esc, rule);
      return esc;
    }
    let i = 0;
    while (this.rules.has(`${esc}${i}`) && this.rules.get(`${esc}${i}`) !== rule) i++;
    this.rules.set(`${esc}${i}`, rule);
    return `${esc}${i}`;
  }

  private primitive(name: string, [content, deps]: [string, string[]]): string {
    const n = this.addRule(name, content);
    for (const d of deps) {
      const dep = PRIMITIVES[d] ?? FORMATS[d];
      if (!this.rules.has(d)) this.primitive(d, dep);
    }
    return n;
  }

  /** llama.cpp's resolve_refs: local `#/…` pointers; remote refs are refused. */
  private collectRefs(n: Json, path: string): void {
    if (Array.isArray(n)) {
      n.forEach((x, i) => {
        this.collectRefs(x, `${path}/${i}`);
      });
    } else if (isObj(n)) {
      if (typeof n.$ref === 'string') {
        const ref = n.$ref;
        if (this.refs.has(ref)) return;
        if (!ref.startsWith('#')) throw new UsageError(`JSON schema at ${path || '/'}: $ref ${JSON.stringify(ref)} is not supported: only local references (#/$defs/...) are`);
        let target: Json = this.root;
        for (const raw of ref.slice(1).split('/').slice(1)) {
          const sel = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
          if (isObj(target) && sel in target) target = target[sel];
          else if (Array.isArray(target) && /^\d+$/.test(sel) && Number(sel) < target.length) target = target[Number(sel)];
          else throw new UsageError(`JSON schema at ${path || '/'}: $ref ${JSON.stringify(ref)} points nowhere (no ${JSON.stringify(sel)})`);
        }
        this.refs.set(ref, target);
      } else for (const [k, v] of Object.entries(n)) this.collectRefs(v, `${path}/${k}`);
    }
  }

  private resolveRef(ref: string, path: string): string {
    const name = `ref${ref.slice(ref.indexOf('#') + 1).replace(/[^a-zA-Z0-9-]+/g, '-')}`;
    if (!this.rules.has(name) && !this.resolving.has(ref)) {
      this.resolving.add(ref);
      const r = this.visit(this.refs.get(ref) as Obj, name, `${path}/$ref`);
      this.resolving.delete(ref);
      return r;
    }
    return name;
  }

  private union(name: string, alts: Json[], path: string, key: string): string {
    return alts.map((a, i) => this.visit(a as Obj, `${name}${name ? '-' : 'alternative-'}${i}`, `${path}/${key}/${i}`)).join(' | ');
  }

  private fail(path: string, why: string): never {
    throw new UsageError(`JSON schema at ${path || '/'}: ${why}`);
  }

  /** Refuses keywords this branch does not honour (for the type it produces). */
  private leftover(s: Obj, path: string, used: string[], type: string | undefined): void {
    const relevant = type ? [...GENERIC, ...(BY_TYPE[type === 'integer' ? 'number' : type] ?? [])] : [...GENERIC, ...Object.values(BY_TYPE).flat()];
    const main = used.find((u) => u in s && u !== 'type') ?? used[0];
    const hint = main === '$ref' ? 'move it into the referenced schema' : main === 'anyOf' || main === 'oneOf' ? 'move it into each alternative' : 'qllm cannot enforce both: drop one';
    for (const k of relevant) {
      if (k in s && !used.includes(k)) this.fail(path, `'${k}' is not supported together with '${main}': ${hint}`);
    }
  }

  visit(schema: Obj | boolean, name: string, path: string): string {
    const ruleName = RESERVED.has(name) ? `${name}-` : name || 'root';
    if (schema === true) return this.addRule(ruleName, this.primitive('value', PRIMITIVES.value));
    if (!isObj(schema)) this.fail(path, schema === false ? 'the schema false matches nothing' : `a schema must be an object, not ${JSON.stringify(schema)}`);
    const s = schema;
    for (const k of UNSUPPORTED) if (k in s) this.fail(path, `'${k}' is not supported: a grammar cannot enforce it; remove it`);
    if (s.uniqueItems === true) this.fail(path, "'uniqueItems' is not supported: a grammar cannot enforce it; remove it");
    let type = s.type;
    const format = typeof s.format === 'string' ? s.format : '';
    if (type === undefined && !('$ref' in s || 'anyOf' in s || 'oneOf' in s || 'allOf' in s || 'const' in s || 'enum' in s)) {
      // No type: the keywords say which (several kinds would mean "any value, each checked by its own").
      const kinds = Object.keys(BY_TYPE).filter((t) => BY_TYPE[t].some((k) => k in s) || (t === 'string' && format));
      if (kinds.length > 1) this.fail(path, `keywords for several types (${kinds.join(', ')}) without 'type': add a type (or anyOf)`);
      if (kinds.length === 1) type = kinds[0];
    }

    if (typeof s.$ref === 'string') {
      this.leftover(s, path, ['$ref'], undefined);
      return this.addRule(ruleName, this.resolveRef(s.$ref, path));
    }
    if (Array.isArray(s.oneOf) || Array.isArray(s.anyOf)) {
      const key = Array.isArray(s.oneOf) ? 'oneOf' : 'anyOf';
      this.leftover(s, path, [key, 'type'], undefined);
      if ((s[key] as Json[]).length === 0) this.fail(path, `${key} is empty: nothing matches it`);
      // A sibling type applies to every alternative that does not say otherwise.
      const alts = (s[key] as Json[]).map((a) => (isObj(a) && type !== undefined && !('type' in a) && !('$ref' in a) ? { type, ...a } : a));
      return this.addRule(ruleName, this.union(name, alts, path, key));
    }
    if (Array.isArray(type)) {
      if (type.length === 0) this.fail(path, 'type is an empty list: nothing matches it');
      return this.addRule(ruleName, this.union(name, type.map((t) => ({ ...s, type: t })), path, 'type'));
    }
    if (type !== undefined && (typeof type !== 'string' || !['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'].includes(type))) {
      this.fail(path, `unknown type ${JSON.stringify(type)}: use string, number, integer, boolean, null, object or array`);
    }
    if ('const' in s || Array.isArray(s.enum)) {
      const key = 'const' in s ? 'const' : 'enum';
      this.leftover(s, path, [key, 'type'], undefined);
      const values = (key === 'const' ? [s.const] : (s.enum as Json[])).filter((v) => type === undefined || jsonType(v, type as string));
      if (values.length === 0) this.fail(path, type === undefined ? `${key} has no values: nothing matches it` : `no ${key} value has type ${type}`);
      const lits = values.map((v) => formatLiteral(JSON.stringify(v)));
      return this.addRule(ruleName, key === 'const' ? lits[0] : `(${lits.join(' | ')})`);
    }
    if (Array.isArray(s.allOf)) return this.visit(this.mergeAllOf(s, path), name, path);
    if ((type === undefined || type === 'object') && ('properties' in s || ('additionalProperties' in s && s.additionalProperties !== true) || 'required' in s)) {
      this.leftover(s, path, ['type', 'properties', 'required', 'additionalProperties'], 'object');
      const props = isObj(s.properties) ? Object.entries(s.properties) : [];
      const required = Array.isArray(s.required) ? s.required.filter((x): x is string => typeof x === 'string') : [];
      for (const r of required) {
        if (props.some(([k]) => k === r)) continue;
        if (s.additionalProperties === false) this.fail(path, `required property ${JSON.stringify(r)} is not in 'properties' and additionalProperties is false: no object satisfies this`);
        props.push([r, isObj(s.additionalProperties) ? s.additionalProperties : true]);
      }
      // A property whose schema is false must be absent: leave it out (or refuse, when required).
      for (const [k, v] of props) if (v === false && required.includes(k)) this.fail(path, `required property ${JSON.stringify(k)} has the schema false: no object satisfies this`);
      const present = props.filter(([, v]) => v !== false);
      return this.addRule(ruleName, this.objectRule(present, new Set(required), name, s.additionalProperties, path));
    }
    if ((type === undefined || type === 'array') && ('items' in s || 'prefixItems' in s || (type === 'array' && ('minItems' in s || 'maxItems' in s)))) {
      this.leftover(s, path, ['type', ...BY_TYPE.array], 'array');
      // A tuple: prefixItems (2020-12; an exact tuple is a valid subset whatever `items` says
      // of the rest) or an array `items` (draft 7). Else llama.cpp's `items`, else `prefixItems`.
      const tuple = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : undefined;
      const items = 'items' in s ? s.items : s.prefixItems;
      const minItems = this.count(s, 'minItems', path) ?? 0;
      const maxItems = this.count(s, 'maxItems', path);
      if (tuple) {
        if (minItems > tuple.length || (maxItems !== undefined && maxItems < tuple.length)) this.fail(path, 'minItems/maxItems that differ from a tuple\'s length are not supported');
        const parts = tuple.map((t, i) => this.visit(t as Obj, `${name}${name ? '-' : ''}tuple-${i}`, `${path}/items/${i}`));
        return this.addRule(ruleName, `"[" space ${parts.join(' "," space ')} space "]"`);
      }
      const item = this.visit((items ?? true) as Obj, `${name}${name ? '-' : ''}item`, `${path}/items`);
      if (maxItems !== undefined && minItems > maxItems) this.fail(path, `minItems ${minItems} > maxItems ${maxItems}: no array satisfies this`);
      // A maximum past the grammar's count limit is capped: fewer items still validate.
      const max = maxItems === undefined ? Number.POSITIVE_INFINITY : Math.min(maxItems, MAX_COUNT + 1);
      return this.addRule(ruleName, `"[" space ${repetition(item, minItems, max, '"," space')} space "]"`);
    }
    if ((type === undefined || type === 'string') && typeof s.pattern === 'string') {
      this.leftover(s, path, ['type', 'pattern'], 'string');
      const body = patternToGbnf(s.pattern, () => this.primitive('char', PRIMITIVES.char), `at ${path || '/'}`);
      return this.addRule(ruleName, String.raw`"\"" (${body}) "\""`);
    }
    if ((type === undefined || type === 'string') && /^uuid[1-5]?$/.test(format)) {
      this.leftover(s, path, ['type'], 'string');
      return this.primitive(ruleName === 'root' ? 'root' : format, PRIMITIVES.uuid);
    }
    if ((type === undefined || type === 'string') && FORMATS[`${format}-string`]) {
      this.leftover(s, path, ['type'], 'string');
      return this.addRule(ruleName, this.primitive(`${format}-string`, FORMATS[`${format}-string`]));
    }
    if (type === 'string' && ('minLength' in s || 'maxLength' in s)) {
      const char = this.primitive('char', PRIMITIVES.char);
      const min = this.count(s, 'minLength', path) ?? 0;
      const max = this.count(s, 'maxLength', path);
      if (max !== undefined && min > max) this.fail(path, `minLength ${min} > maxLength ${max}: no string satisfies this`);
      const capped = max === undefined ? Number.POSITIVE_INFINITY : Math.min(max, MAX_COUNT);
      return this.addRule(ruleName, String.raw`"\"" ${repetition(char, min, capped)} "\""`);
    }
    if ((type === 'integer' || type === 'number') && BY_TYPE.number.some((k) => k in s)) {
      return this.addRule(ruleName, `(${this.bounded(s, type, path)})`);
    }
    if ((type === undefined && Object.keys(s).length === 0) || type === 'object') {
      return this.addRule(ruleName, this.primitive('object', PRIMITIVES.object));
    }
    if (type === undefined) return this.addRule(ruleName, this.primitive('value', PRIMITIVES.value));
    this.leftover(s, path, ['type'], type as string);
    return this.primitive(ruleName === 'root' ? 'root' : (type as string), PRIMITIVES[type as string]);
  }

  /** A non-negative integer keyword (minItems, maxLength, ...); undefined when absent. Refuses counts a grammar cannot spell. */
  private count(s: Obj, key: string, path: string): number | undefined {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(path, `${key} ${JSON.stringify(v)} must be a non-negative integer`);
    if (key.startsWith('min') && v > MAX_COUNT) this.fail(path, `${key} ${v} exceeds the grammar's repetition limit of ${MAX_COUNT}`);
    return v;
  }

  /** Integer (llama.cpp's build_min_max_int) or number (integer bounds) ranges. */
  private bounded(s: Obj, type: string, path: string): string {
    const num = (k: string) => {
      const v = s[k];
      if (v === undefined || typeof v === 'boolean') return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `${k} ${JSON.stringify(v)} must be a number`);
      if (Math.abs(v) > 1e15) this.fail(path, `${k} ${v} is beyond the 16 digits the grammar spells`);
      return v;
    };
    // Draft 4: exclusiveMinimum/Maximum true make minimum/maximum exclusive.
    let lo = num('minimum');
    let loEx = s.exclusiveMinimum === true;
    let hi = num('maximum');
    let hiEx = s.exclusiveMaximum === true;
    const xlo = num('exclusiveMinimum');
    const xhi = num('exclusiveMaximum');
    if (xlo !== undefined && (lo === undefined || xlo >= lo)) { lo = xlo; loEx = true; }
    if (xhi !== undefined && (hi === undefined || xhi <= hi)) { hi = xhi; hiEx = true; }
    if (type === 'integer') {
      const min = lo === undefined ? undefined : loEx ? Math.floor(lo) + 1 : Math.ceil(lo);
      const max = hi === undefined ? undefined : hiEx ? Math.ceil(hi) - 1 : Math.floor(hi);
      if (min !== undefined && max !== undefined && min > max) this.fail(path, `no integer lies between the bounds (${lo} .. ${hi})`);
      const out: string[] = [];
      buildMinMaxInt(min, max, out);
      return out.join('');
    }
    if ((lo !== undefined && !Number.isInteger(lo)) || (hi !== undefined && !Number.isInteger(hi))) {
      this.fail(path, 'number bounds that are not integers are not supported (integer bounds are): round them, or use type integer');
    }
    const rule = numberRange(lo, loEx, hi, hiEx);
    if (!rule) this.fail(path, `no number lies between the bounds (${lo} .. ${hi})`);
    return rule;
  }

  /** allOf: the parts' keywords merged (properties and required united, enums intersected); conflicts refused. */
  private mergeAllOf(s: Obj, path: string): Obj {
    const merged: Obj = {};
    const { allOf, ...rest } = s;
    const deref = (x: Json): Obj => {
      let o = x;
      for (let k = 0; isObj(o) && typeof o.$ref === 'string' && k < 32; k++) o = this.refs.get(o.$ref) ?? null;
      if (!isObj(o)) this.fail(`${path}/allOf`, 'every allOf part must be an object schema');
      return o;
    };
    const parts: Obj[] = [rest, ...(allOf as Json[]).map(deref)];
    for (const p of parts) {
      // anyOf parts whose alternatives require nothing only add optional properties (llama.cpp's reading).
      if (Array.isArray(p.anyOf) && p.anyOf.map(deref).every((a) => !('required' in a) && Object.keys(a).every((k) => ['properties', 'type', 'title', 'description'].includes(k)))) {
        if (!isObj(merged.properties)) merged.properties = {};
        for (const a of p.anyOf.map(deref)) if (isObj(a.properties)) Object.assign(merged.properties, a.properties);
        continue;
      }
      for (const [k, v] of Object.entries(p)) {
        if (k === '$ref' || k === 'allOf') this.fail(`${path}/allOf`, `'${k}' nested inside allOf parts is not supported`);
        if (!(k in merged)) merged[k] = k === 'properties' && isObj(v) ? { ...v } : v;
        else if (k === 'properties' && isObj(v)) {
          for (const [pk, pv] of Object.entries(v)) {
            const cur = (merged.properties as Obj)[pk];
            if (cur !== undefined && JSON.stringify(cur) !== JSON.stringify(pv)) this.fail(`${path}/allOf`, `property ${JSON.stringify(pk)} is defined differently in two allOf parts`);
            (merged.properties as Obj)[pk] = pv;
          }
        } else if (k === 'required' && Array.isArray(v)) merged.required = [...new Set([...(merged.required as Json[]), ...v])];
        else if (k === 'enum' && Array.isArray(v)) merged.enum = (merged.enum as Json[]).filter((x) => v.some((y) => JSON.stringify(x) === JSON.stringify(y)));
        else if (JSON.stringify(merged[k]) !== JSON.stringify(v)) {
          if (['title', 'description', '$schema', '$id', '$comment', 'default', 'examples', '$defs', 'definitions'].includes(k)) continue;
          this.fail(`${path}/allOf`, `'${k}' differs between allOf parts (${JSON.stringify(merged[k])} vs ${JSON.stringify(v)}): merge them by hand`);
        }
      }
    }
    if (Array.isArray(merged.enum) && merged.enum.length === 0) this.fail(`${path}/allOf`, 'the allOf parts\' enums have no value in common');
    return merged;
  }

  /** llama.cpp's _build_object_rule: required properties in order, then optional ones in order, then additional ones. */
  private objectRule(props: [string, Json][], required: Set<string>, name: string, additional: Json | undefined, path: string): string {
    const req: string[] = [];
    const opt: string[] = [];
    const kv = new Map<string, string>();
    const names: string[] = [];
    const sub = (x: string) => `${name}${name ? '-' : ''}${x}`;
    for (const [prop, schema] of props) {
      const r = this.visit(schema as Obj, sub(prop), `${path}/properties/${prop}`);
      kv.set(prop, this.addRule(sub(`${prop}-kv`), `${formatLiteral(JSON.stringify(prop))} space ":" space ${r}`));
      (required.has(prop) ? req : opt).push(prop);
      names.push(prop);
    }
    if (additional === true || isObj(additional)) {
      const value = isObj(additional) ? this.visit(additional, sub('additional-value'), `${path}/additionalProperties`) : this.primitive('value', PRIMITIVES.value);
      const key = names.length === 0 ? this.primitive('string', PRIMITIVES.string) : this.addRule(sub('additional-k'), this.notStrings(names));
      kv.set('*', this.addRule(sub('additional-kv'), `${key} ":" space ${value}`));
      opt.push('*');
    }
    if (req.length === 0 && opt.length === 0) return '"{" space "}"';
    let rule = `"{" space ${req.map((k) => kv.get(k)).join(' "," space ')}`;
    if (opt.length > 0) {
      rule += ' (';
      if (req.length > 0) rule += ' "," space ( ';
      const recursive = (ks: string[], firstOptional: boolean): string => {
        if (ks.length === 0) return '';
        const [k] = ks;
        const r = kv.get(k)!;
        const comma = `( "," space ${r} )`;
        let res = firstOptional ? comma + (k === '*' ? '*' : '?') : r + (k === '*' ? ` ${comma}*` : '');
        if (ks.length > 1) res += ` ${this.addRule(sub(`${k}-rest`), recursive(ks.slice(1), true))}`;
        return res;
      };
      rule += opt.map((_, i) => recursive(opt.slice(i), false)).join(' | ');
      if (req.length > 0) rule += ' )';
      rule += ' )?';
    }
    return `${rule} space "}"`;
  }

  /**
   * A JSON string that is none of `strings` (llama.cpp's _not_strings), over the
   * JSON-escaped spelling of each name: ["] ( [a] ([b] char+ | [^"b] char*) | [^"a] char* )? ["]
   */
  private notStrings(strings: string[]): string {
    type Node = { kids: Map<number, Node>; end: boolean };
    const trie: Node = { kids: new Map(), end: false };
    for (const s of strings) {
      let n = trie;
      for (const ch of JSON.stringify(s).slice(1, -1)) {
        const cp = ch.codePointAt(0)!;
        if (!n.kids.has(cp)) n.kids.set(cp, { kids: new Map(), end: false });
        n = n.kids.get(cp)!;
      }
      n.end = true;
    }
    const char = this.primitive('char', PRIMITIVES.char);
    const cls = (cp: number) => (/[a-zA-Z0-9]/.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : cp > 0xffff ? `\\U${cp.toString(16).padStart(8, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`);
    const visit = (n: Node): string => {
      const alts = [...n.kids].sort((a, b) => a[0] - b[0]).map(([cp, kid]) => `[${cls(cp)}]${kid.kids.size > 0 ? ` (${visit(kid)})` : kid.end ? ` ${char}+` : ''}`);
      if (n.kids.size > 0) alts.push(`[^"${[...n.kids.keys()].sort((a, b) => a - b).map(cls).join('')}] ${char}*`);
      return alts.join(' | ');
    };
    return `["] ( ${visit(trie)} )${trie.end ? '' : '?'} ["]`;
  }
}

/** llama.cpp's build_repetition (max = Infinity: unbounded). */
export function repetition(item: string, min: number, max: number, sep = ''): string {
  const hasMax = max !== Number.POSITIVE_INFINITY;
  if (max === 0) return '';
  if (min === 0 && max === 1) return `${item}?`;
  if (!sep) {
    if (min === 1 && !hasMax) return `${item}+`;
    if (min === 0 && !hasMax) return `${item}*`;
    return `${item}{${min},${hasMax ? max : ''}}`;
  }
  let result = `${item} ${repetition(`(${sep} ${item})`, min === 0 ? 0 : min - 1, hasMax ? max - 1 : max)}`;
  if (min === 0) result = `(${result})?`;
  return result;
}

function jsonType(v: Json, type: string): boolean {
  switch (type) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number';
    case 'string': return typeof v === 'string';
    case 'array': return Array.isArray(v);
    case 'object': return isObj(v);
    default: return true;
  }
}
