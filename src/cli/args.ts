import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in how the command was typed: exit code 2, with the command's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with our UsageError for unknown flags and missing values. */
export function parse(argv: string[], options: Options, allowPositionals = true): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A flag that must be a positive integer (or absent, giving the default). */
export function intFlag(values: Record<string, unknown>, name: string, def: number, min = 1): number {
  const v = values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${String(v)}'`);
  return n;
}

/** A flag that must be a finite number. */
export function numFlag(values: Record<string, unknown>, name: string, def: number, min = -Infinity): number {
  const v = values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number${min > -Infinity ? ` ≥ ${min}` : ''}, got '${String(v)}'`);
  return n;
}

/** "1,3,224,224" → [1, 3, 224, 224]. */
export function shapeFlag(v: string | undefined, def: number[], name = 'input'): number[] {
  if (v === undefined) return def;
  const parts = v.split(/[,x×]/).map((s) => Number(s.trim()));
  if (!parts.length || parts.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UsageError(`--${name} must be a comma-separated list of positive integers like 1,3,224,224, got '${v}'`);
  }
  return parts;
}
