import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';

/** Commander collector for repeatable options: `--tag a=1 --tag b=2`. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `k=v` items into an object; a bad item is a usage error naming the flag. */
export function pairsOf(items: string[] | undefined, flag: string): Record<string, string> | undefined {
  if (items === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} takes key=value; got "${item}".`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** Commander parser for a `k=v` option, so a malformed one fails as a usage error at parse time. */
export function collectPair(value: string, previous: string[] | undefined): string[] {
  if (value.indexOf('=') <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}".`);
  return collect(value, previous);
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${value}".`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}".`);
  return n;
}

/** Scopes may be given as several values, repeated flags, or one comma/space separated list. */
export function splitScopes(values: string[] | undefined): string[] | undefined {
  return values?.flatMap((v) => v.split(/[\s,]+/)).filter((s) => s.length > 0);
}

export function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number 0–65535, got "${value}".`);
  return n;
}
