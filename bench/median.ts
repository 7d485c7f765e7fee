/** The middle of a run of rounds, as every bench reports it: the upper middle of an even count. */

/** The item whose `key` is the median of the items' keys (the whole round, to report its other figures too). */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor(items.length / 2)]!;
}

/** The median of the numbers. */
export const median = (values: readonly number[]): number => medianBy(values, (v) => v);
