import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyedProvider, startApiStandIn, type ApiStandIn } from '../../core/test/support/api-standin.js';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { assertBuilt, newProject, type Project } from './support/cli.js';

const KEY = 'sk-cli0123456789abcdef';

let api: ApiStandIn;
let as: AuthServer;
let p: Project;

beforeAll(async () => {
  assertBuilt();
  api = await startApiStandIn();
  as = await startAuthServer({ registration: true, clients: [] });
  api.route('GET /v1/me', (req) =>
    req.headers['x-api-key'] === KEY
      ? { status: 200, body: { id: 'acct_cli', name: 'Cli User' } }
      : { status: 401, body: { error: { message: `bad key ${String(req.headers['x-api-key'])}` } } },
  );
  p = newProject();
  expect((await p.run(['init', '--base-url', 'http://127.0.0.1:3999'])).code).toBe(0);
  writeFileSync(
    join(p.dir, 'keyed.json'),
    JSON.stringify(
      keyedProvider(api.origin, {
        fields: [
          { name: 'apiKey', label: 'API key' },
          { name: 'region', label: 'Region', secret: false, optional: true },
        ],
        test: { url: `${api.origin}/v1/me`, errorPath: 'error.message', profile: { id: 'id', name: 'name' } },
      }),
    ),
  );
  expect((await p.run(['provider', 'add', 'keyed', '--file', 'keyed.json'])).code).toBe(0);
  const service = await p.run(['service', 'set', 'keyed', '--provider', 'keyed']);
  expect(service.code, service.stderr).toBe(0);
});
afterAll(async () => {
  p?.remove();
  await api?.close();
  await as?.close();
});

describe('identity add --api-key -', () => {
  it('provider get shows the kind, the API hosts and the form fields', async () => {
    const shown = await p.run(['provider', 'get', 'keyed']);
    expect(shown.stdout).toMatch(/kind\s+api_key/);
    expect(shown.stdout).toContain('apiKey (secret), region (optional)');
    expect(shown.stdout).toContain(api.origin);
  });

  it('reads the key from standard input, checks it, stores it, and never prints it unless asked', async () => {
    const r = await p.run(['identity', 'add', 'keyed', '--user-id', 'ann', '--api-key', '-', '--field', 'region=eu', '-o', 'json'], {
      input: `${KEY}\n`,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(KEY);
    expect(JSON.parse(r.stdout)).toMatchObject({ userId: 'ann', profile: { id: 'acct_cli', name: 'Cli User' } });

    const hidden = await p.json(['identity', 'get', 'keyed', 'ann']);
    expect(JSON.stringify(hidden)).not.toContain(KEY);
    const shown = await p.run(['identity', 'get', 'keyed', 'ann', '--show-token']);
    expect(shown.stdout).toContain(`header x-api-key`);
    expect(shown.stdout).toContain(KEY);
  });

  it('exits 1 with the provider message, the key removed, and stores nothing', async () => {
    const wrong = 'sk-wrongwrongwrong';
    const r = await p.run(['identity', 'add', 'keyed', '--user-id', 'bob', '--api-key', '-'], { input: wrong });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad key [redacted]');
    expect(r.stderr).not.toContain(wrong);
    expect(await p.json(['identity', 'ls', 'keyed', '--user-id', 'bob'])).toEqual({ items: [] });
  });
});

describe('provider add --issuer --register', () => {
  it('discovers, registers a client (RFC 7591) and creates the service with its secret sealed', async () => {
    const registered = await p.json(['provider', 'add', 'reg', '--issuer', as.issuer, '--register']);
    expect(registered).toMatchObject({ id: 'reg', providerId: 'reg', hasClientSecret: true });
    expect(await as.provider.Client.find(registered.clientId)).toBeDefined();
    const usage = await p.run(['provider', 'add', 'reg2', '--file', 'keyed.json', '--register']);
    expect(usage.code).toBe(2);
  });
});
