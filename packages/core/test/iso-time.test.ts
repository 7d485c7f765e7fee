import { describe, expect, it } from 'vitest';
import { isoTime } from '../src/iso-time.js';

/** isoTime must write exactly what `Date#toISOString` writes, for every time it is given. */
describe('isoTime', () => {
  const same = (ms: number) => expect(isoTime(ms)).toBe(new Date(ms).toISOString());

  it('matches toISOString at the edges of days, months, leap years and centuries', () => {
    const at = (s: string) => Date.parse(s);
    for (const s of [
      '1970-01-01T00:00:00.000Z',
      '1970-12-31T23:59:59.999Z',
      '1972-02-29T12:00:00.001Z',
      '1999-12-31T23:59:59.999Z',
      '2000-02-29T00:00:00.000Z',
      '2000-03-01T00:00:00.000Z',
      '2024-02-29T23:59:59.999Z',
      '2100-02-28T23:59:59.999Z',
      '2100-03-01T00:00:00.000Z',
      '2400-02-29T08:09:10.011Z',
      '9999-12-31T23:59:59.999Z',
    ]) {
      same(at(s));
      same(at(s) - 1);
      same(at(s) + 1);
    }
  });

  it('matches toISOString on random times from 1970 to 9999', () => {
    for (let i = 0; i < 100_000; i++) same(Math.floor(Math.random() * 253_402_300_800_000));
  });

  it('leaves years outside 1970–9999 and fractions of a millisecond to toISOString', () => {
    for (const ms of [-1, -62_198_755_200_000, 253_402_300_800_000, 8.64e15, 1.5]) same(ms);
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
  });
});
