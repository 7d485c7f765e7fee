import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { assertBuilt, newProject, type Project } from './support/cli.js';
import { authorizeInProject } from './support/flow.js';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The lines of the first ```text block after `heading` in the README. */
function readmeBlock(heading: string): string[] {
  const text = readFileSync(README, 'utf8');
  const at = text.indexOf(heading);
  expect(at, `README has the heading ${heading}`).toBeGreaterThan(-1);
  const block = /```text\n([\s\S]*?)```/.exec(text.slice(at));
  return (block?.[1] ?? '').trimEnd().split('\n');
}

let p: Project;
beforeAll(() => {
  assertBuilt();
  p = newProject();
});
afterAll(() => p?.remove());

describe('everyauth --help', () => {
  it('lists every command exactly as the README synopsis does', async () => {
    const help = await p.run(['--help']);
    expect(help.code).toBe(0);
    const listed = /All commands:\n([\s\S]*?)\n\n/
      .exec(help.stdout)?.[1]
      ?.split('\n')
      .map((line) => line.trim());
    expect(listed, help.stdout).toBeDefined();
    expect(readmeBlock('## The `everyauth` command')).toEqual(listed);
  });

  it('shows --base-url on init, whose default suits only an app on port 3000', async () => {
    const help = await p.run(['init', '--help']);
    expect(help.stdout).toContain('--base-url <url>');
    expect(readmeBlock('## The `everyauth` command')[0]).toContain('[--base-url <url>]');
  });
});

describe('catalog commands before init', () => {
  it('lists and shows built-in providers with no .everyauth folder, and makes none', async () => {
    const ls = await p.json<Array<{ id: string; custom: boolean }>>(['provider', 'ls', '--search', 'google']);
    expect(ls.map((x) => x.id)).toContain('google');
    const google = await p.json<{ id: string; authorizationUrl: string }>(['provider', 'get', 'google']);
    expect(google.authorizationUrl).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    const sfdc = await p.run(['provider', 'ls', '--search', 'sfdc']);
    expect(sfdc.stdout).toMatch(/sfdc\s+Salesforce\s+.*alias of salesforce/);
    expect(await p.json(['provider', 'get', 'githuboauth'])).toMatchObject({ id: 'githuboauth', aliasOf: 'github' });
    const missing = await p.run(['provider', 'get', 'no-such-provider']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('everyauth provider ls --search');
    expect(existsSync(join(p.dir, '.everyauth'))).toBe(false);
  });

  it('still asks for init where a master key is needed', async () => {
    const r = await p.run(['service', 'ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('everyauth init');
  });
});

describe('endpoint overrides on a service', () => {
  let q: Project;
  beforeAll(async () => {
    q = newProject();
    expect((await q.run(['init', '--base-url', 'http://127.0.0.1:3999'])).code).toBe(0);
  });
  afterAll(() => q?.remove());

  it('points a built-in provider at a self-managed install through its variable, and shows where requests go', async () => {
    const set = await q.run(['service', 'set', 'gitlab', '--client-id', 'c', '--variable', 'baseUrl=https://gitlab.example.com']);
    expect(set.code, set.stderr).toBe(0);
    const shown = await q.run(['service', 'get', 'gitlab']);
    expect(shown.stdout).toMatch(/tokenUrl\s+https:\/\/gitlab\.example\.com\/oauth\/token/);
    const json = await q.json<{ endpoints: Record<string, string> }>(['service', 'get', 'gitlab']);
    expect(json.endpoints).toMatchObject({
      authorizationUrl: 'https://gitlab.example.com/oauth/authorize',
      profileUrl: 'https://gitlab.example.com/api/v4/user',
    });
  });

  it('overrides one endpoint of any provider (staging), marked as such, and refuses one that is not https', async () => {
    // --var, the option's first name, is still accepted (not shown by --help).
    const set = await q.run(['service', 'set', 'google', '--client-id', 'c', '--var', 'tokenUrl=https://oauth2.staging.example.com/token']);
    expect(set.code, set.stderr).toBe(0);
    const shown = await q.run(['service', 'get', 'google']);
    expect(shown.stdout).toMatch(/tokenUrl\s+https:\/\/oauth2\.staging\.example\.com\/token \(overridden\)/);
    expect(shown.stdout).toMatch(/authorizationUrl\s+https:\/\/accounts\.google\.com\/o\/oauth2\/v2\/auth\n/);

    const refused = await q.run(['service', 'set', 'google', '--variable', 'tokenUrl=http://oauth2.staging.example.com/token']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('must use https (plain http only on localhost or 127.0.0.1)');
    expect(refused.stderr).toContain('everyauth service set <service> --variable <name>=<value>');
    expect((await q.json<{ variables: Record<string, string> }>(['service', 'get', 'google'])).variables).toEqual({
      tokenUrl: 'https://oauth2.staging.example.com/token',
    });
  });
});

describe('identity refresh when the provider refuses or is down', () => {
  const SECRET = 'usage-test-client-secret';
  let auth: AuthServer;
  let r: Project;
  beforeAll(async () => {
    auth = await startAuthServer({
      clients: [{ client_id: 'usage-test', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:3998/local/callback'] }],
    });
    r = newProject();
    expect((await r.run(['init', '--base-url', 'http://127.0.0.1:3998'])).code).toBe(0);
    expect((await r.run(['provider', 'add', 'local-idp', '--issuer', auth.issuer])).code).toBe(0);
    const set = await r.run(['service', 'set', 'local', '--provider', 'local-idp', '--client-id', 'usage-test', '--client-secret', '-'], {
      input: SECRET,
    });
    expect(set.code, set.stderr).toBe(0);
    await authorizeInProject(r.dir, auth, 'local', 'alice');
  });
  afterAll(async () => {
    r?.remove();
    await auth?.close();
  });

  it("exits 1 with the provider's reason, instead of reporting the old token as refreshed", async () => {
    const before = await r.json<{ expiresAt: string }>(['identity', 'get', 'local', 'alice']);
    auth.failNextTokenRequests(1, { status: 400, body: { error: 'invalid_client', error_description: 'client is disabled' } });
    const refused = await r.run(['identity', 'refresh', 'local', 'alice']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).not.toContain('Refreshed');
    expect(refused.stderr).toContain('invalid_client');

    auth.failNextTokenRequests(3, { status: 503 });
    const down = await r.run(['identity', 'refresh', 'local', 'alice']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/unavailable \(it answered with a server error\)/);
    // The identity keeps its valid token for readers that do not force a refresh.
    expect(await r.json(['identity', 'get', 'local', 'alice'])).toMatchObject({ status: 'active', expiresAt: before.expiresAt });
  });
});
