import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigurationError, configFileFields, configVariables, readConfigFile, readEnv, resolveConfig } from '@everyauth/core';

/** The error readEnv throws for `env`, or undefined when it accepts it. */
function refusal(env: NodeJS.ProcessEnv): ConfigurationError | undefined {
  try {
    readEnv(env);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
}

describe('the environment schema', () => {
  it.each([
    ['not a number', 'EVERYAUTH_RATE_LIMIT', 'abc', 'a whole number of requests per minute', 'EVERYAUTH_RATE_LIMIT=600'],
    ['a negative number', 'EVERYAUTH_RATE_LIMIT', '-5', 'a whole number', 'EVERYAUTH_RATE_LIMIT=600'],
    ['a fraction', 'EVERYAUTH_RATE_LIMIT', '1.5', 'a whole number', 'EVERYAUTH_RATE_LIMIT=600'],
    ['a port out of range', 'EVERYAUTH_PORT', '70000', 'a port number from 0 to 65535', 'EVERYAUTH_PORT=4000'],
    ['a port with a unit', 'EVERYAUTH_PORT', '4000tcp', 'a port number', 'EVERYAUTH_PORT=4000'],
    ['a URL without a scheme', 'EVERYAUTH_BASE_URL', 'localhost:3000', 'an absolute http(s) URL', 'EVERYAUTH_BASE_URL=https://'],
    ['a level pino does not have', 'EVERYAUTH_LOG_LEVEL', 'loud', 'one of fatal, error, warn, info', 'EVERYAUTH_LOG_LEVEL=debug'],
    ['a flag that is neither on nor off', 'EVERYAUTH_SANDBOX', 'maybe', 'one of 1, true', 'EVERYAUTH_SANDBOX=true'],
    [
      'one bad origin in the list',
      'EVERYAUTH_ALLOWED_ORIGINS',
      'https://a.example,a.example',
      'comma-separated',
      'EVERYAUTH_ALLOWED_ORIGINS=https://',
    ],
    ['only spaces', 'EVERYAUTH_HOST', '   ', 'a host name or IP address', 'EVERYAUTH_HOST=0.0.0.0'],
  ])('refuses %s, naming the variable, its value, what is expected and a good value', (_, name, value, expected, example) => {
    const err = refusal({ [name]: value });
    expect(err?.message).toContain(`${name}=${JSON.stringify(value)} is not valid: expected ${expected}`);
    expect(err?.message).toContain(`for example ${example}`);
    expect(err?.cause).toEqual({ variables: [name] });
  });

  it('never repeats the value of a secret variable (a URL may carry a password)', () => {
    const err = refusal({ EVERYAUTH_SERVER_URL: 'ftp://admin:hunter2@host/' });
    expect(err?.message).toMatch(/^EVERYAUTH_SERVER_URL is not valid: expected an absolute http\(s\) URL/);
    expect(err?.message).not.toContain('hunter2');
  });

  it('names every bad variable at once, in the order of the schema', () => {
    const err = refusal({ EVERYAUTH_RATE_LIMIT: 'abc', EVERYAUTH_PORT: 'x', EVERYAUTH_HOST: 'ok' });
    expect(err?.message.split('\n').map((line) => line.split(/[= ]/)[0])).toEqual(['EVERYAUTH_PORT', 'EVERYAUTH_RATE_LIMIT']);
  });

  it('types good values, and takes an empty one as not set', () => {
    expect(
      readEnv({
        EVERYAUTH_RATE_LIMIT: '0',
        EVERYAUTH_PORT: '',
        EVERYAUTH_SANDBOX: ' TRUE ',
        EVERYAUTH_DEBUG: 'off',
        EVERYAUTH_ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443,',
        EVERYAUTH_BASE_URL: 'http://localhost:3000',
        UNRELATED: 'abc',
      }),
    ).toEqual({
      EVERYAUTH_RATE_LIMIT: 0,
      EVERYAUTH_SANDBOX: true,
      EVERYAUTH_DEBUG: false,
      EVERYAUTH_ALLOWED_ORIGINS: ['https://a.example', 'https://b.example:8443'],
      EVERYAUTH_BASE_URL: 'http://localhost:3000',
    });
  });

  it('checks only the variables asked for, when named', () => {
    expect(readEnv({ EVERYAUTH_RATE_LIMIT: 'abc', EVERYAUTH_DEBUG: '1' }, ['EVERYAUTH_DEBUG'])).toEqual({ EVERYAUTH_DEBUG: true });
  });

  it('documents every variable, and each example is itself a good value', () => {
    expect(configVariables.length).toBeGreaterThanOrEqual(15);
    for (const v of configVariables) {
      expect(v.name).toMatch(/^EVERYAUTH_[A-Z_]+$/);
      expect(v.description.length, v.name).toBeGreaterThan(10);
      expect(() => readEnv({ [v.name]: v.example }), v.name).not.toThrow();
    }
  });

  it('makes resolveConfig refuse a bad variable', async () => {
    await expect(resolveConfig({ env: { EVERYAUTH_BASE_URL: 'nope' }, dir: '/nonexistent' })).rejects.toThrow(/EVERYAUTH_BASE_URL="nope"/);
  });
});

describe('the config.json schema', () => {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (json: string) => writeFileSync(join(dir, 'config.json'), json);

  it('names the field, what is expected and an example', async () => {
    write(JSON.stringify({ active: 'default', profiles: { default: { mode: 'embedded', baseUrl: 'localhost' } } }));
    await expect(readConfigFile(dir)).rejects.toThrow(
      /profiles\.default\.baseUrl: expected an absolute http\(s\) URL; for example "https:\/\/app\.example\.com"/,
    );
    write(JSON.stringify({ profiles: { prod: { mode: 'cloud' } } }));
    await expect(readConfigFile(dir)).rejects.toThrow(/profiles\.prod\.mode: expected "embedded" or "remote"/);
  });

  it('does not quote a file that is not JSON (it may hold an API key)', async () => {
    write('{"profiles": {"x": {"mode": "remote", "apiKey": "ea_secret_value",}}}');
    const err = await readConfigFile(dir).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as Error).message).toMatch(/is not valid JSON/);
    expect((err as Error).message).not.toContain('ea_secret_value');
  });

  it('documents every field', () => {
    expect(configFileFields.map((f) => f.path)).toEqual([
      'active',
      'profiles.<name>.mode',
      'profiles.<name>.server',
      'profiles.<name>.apiKey',
      'profiles.<name>.store',
      'profiles.<name>.keyFile',
      'profiles.<name>.baseUrl',
    ]);
    for (const f of configFileFields) expect(f.description.length, f.path).toBeGreaterThan(10);
  });
});
