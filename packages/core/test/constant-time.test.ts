import { describe, expect, it } from 'vitest';
import { equalInConstantTime } from '../src/ids.js';
import { sameCsrf } from '../src/kinds/form-page.js';

describe('equalInConstantTime', () => {
  it('is equality of the strings, whatever their lengths and characters', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['abc', 'abc'],
      ['abc', 'abd'],
      ['abc', 'ab'],
      ['ab', 'abc'],
      ['aa', 'éé'], // same length, UTF-8 lengths differ
      ['\ud800', '\udc00'], // lone surrogates, which UTF-8 encodes alike
      ['a\u0000', 'a'],
    ];
    for (const [a, b] of cases) expect(equalInConstantTime(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(a === b);
  });
});

describe('sameCsrf', () => {
  it('accepts only the same value, and answers false (never throws) for a posted value of another byte length', () => {
    expect(sameCsrf('token-value', 'token-value')).toBe(true);
    expect(sameCsrf('token-value', 'token-valuf')).toBe(false);
    expect(sameCsrf('aa', 'éé')).toBe(false);
    expect(sameCsrf(undefined, 'x')).toBe(false);
    expect(sameCsrf('x', undefined)).toBe(false);
    expect(sameCsrf('', '')).toBe(false);
  });
});
