import { describe, expect, it } from 'vitest';
import { registeredErrors } from '@everyauth/core';
import everyauth, * as express from '../src/index.js';

describe('error classes', () => {
  it('re-exports every error class core registers, as named exports and on the default export', () => {
    expect(registeredErrors().size).toBeGreaterThanOrEqual(11);
    for (const [name, cls] of registeredErrors()) {
      expect((express as Record<string, unknown>)[name], name).toBe(cls);
      expect((everyauth as unknown as Record<string, unknown>)[name], name).toBe(cls);
    }
  });
});
