import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { assertBuilt, newProject, type Project } from './support/cli.js';
import { authorizeInProject } from './support/flow.js';

const SECRET = 'cli-test-client-secret-do-not-print';
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

let auth: AuthServer;
let p: Project;

beforeAll(async () => {
  assertBuilt();
  auth = await startAuthServer({
    clients: [{ client_id: 'everyauth-test', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:3999/local/callback'] }],
  });
  p = newProject();
});
afterAll(async () => {
  p?.remove();
  await auth?.close();
});

const mode = (path: string) => statSync(path).mode & 0o777;

describe('usage and exit codes', () => {
  it('prints help and the version with exit code 0', async () => {
    const help = await p.run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 success, 1 failure, 2 usage error.');
    const version = await p.run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exits 2 on usage errors: no command, unknown command, bad flag, bad choice', async () => {
    const cases = [
      [],
      ['servce', 'ls'],
      ['service', 'ls', '--bogus'],
      ['-o', 'yaml', 'service', 'ls'],
      ['service', 'set'],
      ['identity', 'ls', 'x', '--tag', 'novalue'],
    ];
    const results = await Promise.all(cases.map((args) => p.run(args)));
    results.forEach((r, i) => {
      expect(r.code, `everyauth ${cases[i]!.join(' ')}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.length).toBeGreaterThan(0);
    });
    expect(results[1]!.stderr).toMatch(/Did you mean .*service/);
  });

  it('says what to do when there is no master key yet (exit 1)', async () => {
    const r = await p.run(['service', 'ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('No master key');
    expect(r.stderr).toContain('everyauth init');
  });
});

describe('init', () => {
  it('makes .everyauth with a 0600 config and key, a migrated store, and says what to do next', async () => {
    const r = await p.run(['init', '--base-url', 'http://127.0.0.1:3999']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('master.key created');
    expect(r.stderr).toContain('Next:');
    const dir = join(p.dir, '.everyauth');
    expect(mode(join(dir, 'master.key'))).toBe(0o600);
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
    expect(statSync(join(dir, 'everyauth.db')).size).toBeGreaterThan(0);
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toContain('*');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config).toEqual({ active: 'default', profiles: { default: { mode: 'embedded', baseUrl: 'http://127.0.0.1:3999' } } });
  });

  it('never replaces an existing key without --force', async () => {
    const keyFile = join(p.dir, '.everyauth', 'master.key');
    const before = readFileSync(keyFile, 'utf8');
    const again = await p.json(['init', '--base-url', 'http://127.0.0.1:3999']);
    expect(again.key.status).toBe('kept');
    expect(readFileSync(keyFile, 'utf8')).toBe(before);
    expect(JSON.parse(before).current).toBe(again.key.id);
  });

  it('keeps named profiles side by side and makes the new one active; --profile selects', async () => {
    const other = newProject();
    try {
      expect((await other.run(['init'])).code).toBe(0);
      const staging = await other.json(['init', '--profile', 'staging']);
      expect(staging.store).toBe(join('.everyauth', 'staging.db'));
      expect(mode(join(other.dir, '.everyauth', 'staging.key'))).toBe(0o600);
      const remote = await other.run(['init', '--profile', 'prod', '--server', 'https://everyauth.example.test', '--api-key', '-'], {
        input: 'ea_0123456789abcdef_key\n',
      });
      expect(remote.code, remote.stderr).toBe(0);
      const config = JSON.parse(readFileSync(join(other.dir, '.everyauth', 'config.json'), 'utf8'));
      expect(config.active).toBe('prod');
      expect(Object.keys(config.profiles).sort()).toEqual(['default', 'prod', 'staging']);
      expect(config.profiles.prod).toEqual({ mode: 'remote', server: 'https://everyauth.example.test', apiKey: 'ea_0123456789abcdef_key' });
      // Store-level commands say where they must run instead.
      const exported = await other.run(['export', '--out', 'b.ea'], { env: { EVERYAUTH_BUNDLE_PASSPHRASE: 'long enough passphrase' } });
      expect(exported.code).toBe(1);
      expect(exported.stderr).toContain("on the server's machine");
      // The other profiles still work when named.
      expect((await other.json(['--profile', 'staging', 'service', 'ls'])).length).toBe(0);
      const missing = await other.run(['--profile', 'nope', 'service', 'ls']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('everyauth init --profile nope');
      expect((await other.run(['init', '--server', 'https://x.test'])).code).toBe(2);
    } finally {
      other.remove();
    }
  });
});

describe('providers', () => {
  it('lists and searches the catalog, as a table or JSON', async () => {
    const table = await p.run(['provider', 'ls', '--search', 'goo']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+KIND\s+DOCS/);
    expect(table.stdout).toContain('google');
    expect(table.stdout).not.toMatch(ANSI); // not a terminal: no colours
    const all = await p.json(['provider', 'ls']);
    expect(all.length).toBeGreaterThan(30);
    const google = await p.json(['provider', 'get', 'google']);
    expect(google.tokenUrl).toMatch(/^https:\/\//);
    const unknown = await p.run(['provider', 'get', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No provider "nope"');
    expect(unknown.stderr).toContain('everyauth provider ls');
  });

  it('adds a provider by discovery and from a file, validating the file; removes custom ones only', async () => {
    const discovered = await p.json(['provider', 'add', 'local-idp', '--issuer', auth.issuer]);
    expect(discovered.tokenUrl).toBe(`${auth.issuer}/token`);

    writeFileSync(join(p.dir, 'bad.json'), JSON.stringify({ name: 'Bad', docs: 'https://x.test', authorizationUrl: 'not a url' }));
    const bad = await p.run(['provider', 'add', 'bad', '--file', 'bad.json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('authorizationUrl');
    expect(bad.stderr).toContain('tokenUrl');

    writeFileSync(join(p.dir, 'broken.json'), '{ "name": ');
    expect((await p.run(['provider', 'add', 'broken', '--file', 'broken.json'])).stderr).toContain('not valid JSON');
    expect((await p.run(['provider', 'add', 'x', '--issuer', auth.issuer, '--file', 'bad.json'])).code).toBe(2);

    const good = {
      name: 'Acme',
      docs: 'https://acme.test/docs',
      authorizationUrl: 'https://acme.test/authorize',
      tokenUrl: 'https://acme.test/token',
    };
    writeFileSync(join(p.dir, 'acme.json'), JSON.stringify(good));
    expect((await p.run(['provider', 'add', 'acme', '--file', 'acme.json'])).code).toBe(0);
    const custom = (await p.json(['provider', 'ls', '--search', 'acme'])) as { id: string; custom: boolean }[];
    expect(custom).toEqual([expect.objectContaining({ id: 'acme', custom: true })]);
    expect((await p.run(['provider', 'rm', 'acme'])).code).toBe(0);
    expect((await p.run(['provider', 'rm', 'acme'])).code).toBe(1);
    const builtIn = await p.run(['provider', 'rm', 'google']);
    expect(builtIn.code).toBe(1);
    expect(builtIn.stderr).toContain('built-in');
  });
});

describe('services', () => {
  it('takes the client secret from standard input and never shows it', async () => {
    const set = await p.run(
      [
        'service',
        'set',
        'local',
        '--provider',
        'local-idp',
        '--client-id',
        'everyauth-test',
        '--client-secret',
        '-',
        '--scope',
        'openid',
        'email',
      ],
      {
        input: `${SECRET}\n`,
      },
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('Created service "local"');
    expect(set.stdout).toContain('http://127.0.0.1:3999/local/callback');
    expect(set.stderr).not.toContain('shell history');

    const got = await p.json(['service', 'get', 'local']);
    expect(got).toMatchObject({
      id: 'local',
      providerId: 'local-idp',
      hasClientSecret: true,
      scopes: ['openid', 'email'],
      redirectUrl: 'http://127.0.0.1:3999/local/callback',
    });
    const table = await p.run(['service', 'get', 'local']);
    expect(table.stdout).toMatch(/redirect URL\s+http:\/\/127\.0\.0\.1:3999\/local\/callback/);
    for (const r of [table, await p.run(['service', 'ls']), await p.run(['service', 'ls', '-o', 'json'])])
      expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('updates only the given fields; warns about a secret on the command line', async () => {
    const r = await p.run(['service', 'set', 'local', '--param', 'prompt=consent', '--client-secret', SECRET]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('shell history');
    const got = await p.json(['service', 'get', 'local']);
    expect(got).toMatchObject({ clientId: 'everyauth-test', scopes: ['openid', 'email'], params: { prompt: 'consent' } });
    const api = await p.run(['service', 'set', 'local', '--api-base-url', 'https://api.example.com/v1/', 'https://uploads.example.com']);
    expect(api.code).toBe(0);
    expect((await p.json(['service', 'get', 'local'])).apiBaseUrls).toEqual(['https://api.example.com/v1', 'https://uploads.example.com']);
    const refused = await p.run(['service', 'set', 'local', '--api-base-url', 'http://10.0.0.1/']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/must use https|IP address/);
  });

  it('fails clearly on an unknown service or provider', async () => {
    const cases = [
      ['service', 'get', 'nope'],
      ['service', 'rm', 'nope'],
      ['identity', 'ls', 'nope'],
      ['identity', 'get', 'nope', '--user-id', 'u'],
    ];
    const results = await Promise.all(cases.map((args) => p.run(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]!.join(' ')).toBe(1);
      expect(r.stderr).toContain('No service "nope"');
      expect(r.stderr).toContain('everyauth service ls');
    });
    const noProvider = await p.run(['service', 'set', 'other', '--provider', 'nope', '--client-id', 'x']);
    expect(noProvider.code).toBe(1);
    expect(noProvider.stderr).toContain('No provider "nope"');
    const emptyStdin = await p.run(['service', 'set', 'local', '--client-secret', '-'], { input: '' });
    expect(emptyStdin.code).toBe(2);
  });
});

describe('identities', () => {
  it('lists, shows, refreshes and deletes an identity authorized at the provider', async () => {
    await authorizeInProject(p.dir, auth, 'local', 'alice', { tenantId: 'acme', tags: { plan: 'pro' } });
    await authorizeInProject(p.dir, auth, 'local', 'bob');

    const list = await p.json(['identity', 'ls', 'local']);
    expect(list.items.map((i: { userId: string }) => i.userId).sort()).toEqual(['alice', 'bob']);
    const filtered = await p.json(['identity', 'ls', 'local', '--tag', 'plan=pro', '--status', 'active']);
    expect(filtered.items).toHaveLength(1);
    expect(filtered.items[0]).toMatchObject({ userId: 'alice', tenantId: 'acme', tags: { plan: 'pro' } });
    const paged = await p.json(['identity', 'ls', 'local', '--limit', '1']);
    expect(paged.items).toHaveLength(1);
    expect(paged.next).toBeDefined();
    const rest = await p.json(['identity', 'ls', 'local', '--limit', '1', '--next', paged.next]);
    expect(rest.items[0].id).not.toBe(paged.items[0].id);

    const table = await p.run(['identity', 'ls', 'local']);
    expect(table.stdout).toContain('alice@example.test');
    const shown = await p.json(['identity', 'get', 'local', '--user-id', 'alice']);
    expect(shown).not.toHaveProperty('accessToken');
    const listingText = JSON.stringify(list) + table.stdout + JSON.stringify(shown);

    const withToken = await p.json(['identity', 'get', 'local', shown.id, '--show-token']);
    expect((await auth.userinfo(withToken.accessToken)).status).toBe(200);
    expect(listingText).not.toContain(withToken.accessToken);

    const refreshes = auth.tokenRequests.byGrant.refresh_token ?? 0;
    const refreshed = await p.json(['identity', 'refresh', 'local', '--user-id', 'alice', '--show-token']);
    expect(auth.tokenRequests.byGrant.refresh_token).toBe(refreshes + 1);
    expect(refreshed.accessToken).not.toBe(withToken.accessToken);
    expect((await auth.userinfo(refreshed.accessToken)).status).toBe(200);

    expect((await p.run(['identity', 'get', 'local'])).code).toBe(2); // no selector
    expect((await p.run(['identity', 'get', 'local', shown.id, '--user-id', 'alice'])).code).toBe(2);
    const missing = await p.run(['identity', 'get', 'local', '--user-id', 'carol']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('everyauth identity ls local');

    const removed = await p.run(['identity', 'rm', 'local', '--user-id', 'bob', '--revoke']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('revoked');
    expect((await p.json(['identity', 'ls', 'local'])).items).toHaveLength(1);
    const all = await p.json(['identity', 'rm', 'local', '--all']);
    expect(all.deleted).toBe(1);
  });
});
