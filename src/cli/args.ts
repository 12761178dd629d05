// Shared argument parsing for `qllm <command>`: node:util parseArgs, with its
// errors turned into one-line UsageErrors and typed number/enum checks.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** What parse() returns: parseArgs's typed values and the positionals (named, for the built .d.ts). */
export type Parsed<O extends OptionSpec> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

/** Names other tools use (llama.cpp's among them) that no edit distance would lead to. */
const SYNONYMS: Record<string, string> = { '--context': '--ctx', '--n-predict': '--max-tokens', '--predict': '--max-tokens', '--system-prompt': '--system' };

/** Parses argv (without the command name). Unknown flags are a UsageError naming the flag. */
export function parse<O extends OptionSpec>(argv: string[], options: O, command: string): Parsed<O> {
  // `-n -3` would be read as two flags; join a string option with a negative
  // number so that the range check can name the value instead.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = Object.entries(options).find(([long, o]) => o.type === 'string' && (a === `--${long}` || (o.short && a === `-${o.short}`)))?.[0];
    if (name && /^-[\d.]/.test(argv[i + 1] ?? '')) args.push(`--${name}=${argv[++i]}`);
    else args.push(a);
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    const unknown = /^Unknown option '(-{1,2}[^'=]+)/.exec(msg)?.[1];
    if (unknown) {
      const flags = Object.entries(options).flatMap(([long, o]) => [`--${long}`, ...(o.short ? [`-${o.short}`] : [])]);
      const near = SYNONYMS[unknown] && flags.includes(SYNONYMS[unknown]) ? SYNONYMS[unknown] : closest(unknown, flags.filter((f) => f.startsWith('--')));
      throw new UsageError(`unknown option '${unknown}'${near ? `: did you mean ${near}?` : ''} — see 'qllm ${command} --help'`);
    }
    throw new UsageError(`${msg} — see 'qllm ${command} --help'`);
  }
}

/** A number flag within [min, max]; `integer` rejects fractions; `example`: the value the error suggests (else dflt, else min). */
export function num(value: string | undefined, flag: string, opts: { min?: number; max?: number; integer?: boolean; dflt?: number; example?: number } = {}): number | undefined {
  if (value === undefined) return opts.dflt;
  const v = Number(value);
  const range = `${opts.min ?? '-∞'}..${opts.max ?? '∞'}`;
  if (value.trim() === '' || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    throw new UsageError(`${flag} ${value} is not ${opts.integer ? 'an integer' : 'a number'} in ${range}: pass e.g. ${flag} ${opts.example ?? opts.dflt ?? opts.min ?? 1}`);
  }
  return v;
}

/** Requires exactly `n` positionals, naming what they are in the error. */
export function positionals(pos: string[], names: string[], command: string): string[] {
  if (pos.length < names.length) throw new UsageError(`missing ${names.slice(pos.length).map((n) => `<${n}>`).join(' ')}: usage: qllm ${command} ${names.map((n) => `<${n}>`).join(' ')}`);
  if (pos.length > names.length) throw new UsageError(`unexpected argument '${pos[names.length]}': usage: qllm ${command} ${names.map((n) => `<${n}>`).join(' ')}`);
  return pos;
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a likely typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    // A prefix either way ('--temperature' for '--temp', '--seed' for '--seeds') is as near as one typo.
    const [short, long] = word.length < c.length ? [word, c] : [c, word];
    const d = long.startsWith(short) && short.replace(/^-+/, '').length >= 3 ? 1 : editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  // A third of the word may be wrong: '--tmep' → '--temp', '--frobnicate' → nothing.
  return bestD <= Math.max(1, Math.floor(word.replace(/^-+/, '').length / 3)) ? best : undefined;
}

/** Edit distance where swapping two neighbours ('--tmep') counts as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
