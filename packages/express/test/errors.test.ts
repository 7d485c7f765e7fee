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

describe('configuration from the environment', () => {
  it('refuses a bad EVERYAUTH_* variable when the broker opens, naming it and a good value', async () => {
    const instance = express.createEveryAuth();
    instance.config({ env: { EVERYAUTH_BASE_URL: 'localhost:3000' }, dir: '/nonexistent/.everyauth' });
    const opened = instance.broker();
    await expect(opened).rejects.toBeInstanceOf(express.ConfigurationError);
    await expect(opened).rejects.toThrow(
      'EVERYAUTH_BASE_URL="localhost:3000" is not valid: expected an absolute http(s) URL; for example EVERYAUTH_BASE_URL=https://app.example.com.',
    );
  });
});
