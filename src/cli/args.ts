// Shared argument parsing for `qllm <command>`: node:util parseArgs, with its
// errors turned into one-line UsageErrors and typed number/enum checks.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Parses argv (without the command name). Unknown flags are a UsageError naming the flag. */
export function parse<O extends OptionSpec>(argv: string[], options: O, command: string) {
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
    throw new UsageError(`${msg} — see 'qllm ${command} --help'`);
  }
}

/** A number flag within [min, max]; `integer` rejects fractions. */
export function num(value: string | undefined, flag: string, opts: { min?: number; max?: number; integer?: boolean; dflt?: number } = {}): number | undefined {
  if (value === undefined) return opts.dflt;
  const v = Number(value);
  const range = `${opts.min ?? '-∞'}..${opts.max ?? '∞'}`;
  if (value.trim() === '' || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    throw new UsageError(`${flag} ${value} is not ${opts.integer ? 'an integer' : 'a number'} in ${range}: pass e.g. ${flag} ${opts.dflt ?? opts.min ?? 1}`);
  }
  return v;
}

/** Requires exactly `n` positionals, naming what they are in the error. */
export function positionals(pos: string[], names: string[], command: string): string[] {
  if (pos.length < names.length) throw new UsageError(`missing ${names.slice(pos.length).map((n) => `<${n}>`).join(' ')}: usage: qllm ${command} ${names.map((n) => `<${n}>`).join(' ')}`);
  if (pos.length > names.length) throw new UsageError(`unexpected argument '${pos[names.length]}': usage: qllm ${command} ${names.map((n) => `<${n}>`).join(' ')}`);
  return pos;
}
