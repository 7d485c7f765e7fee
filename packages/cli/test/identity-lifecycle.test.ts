/** `identity tag`, `identity check` and `identity reconnect` on an embedded project (issue 15). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { assertBuilt, type Project } from './support/cli.js';
import { authorizeInProject, projectWithService } from './support/flow.js';

const SECRET = 'cli-lifecycle-client-secret';

let auth: AuthServer;
let p: Project;

beforeAll(async () => {
  assertBuilt();
  auth = await startAuthServer({
    accessTokenTtl: 3600,
    clients: [{ client_id: 'everyauth-test', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:3999/local/callback'] }],
  });
  p = await projectWithService(auth, { id: 'local', clientId: 'everyauth-test', clientSecret: SECRET });
  await authorizeInProject(p.dir, auth, 'local', 'alice', { tags: { plan: 'pro', region: 'eu' } });
});
afterAll(async () => {
  p?.remove();
  await auth?.close();
});

describe('identity tag', () => {
  it('sets and unsets tags and replaces metadata, keeping the rest', async () => {
    const tagged = await p.json(['identity', 'tag', 'local', '--user-id', 'alice', '--set', 'plan=team', '--unset', 'region']);
    expect(tagged.tags).toEqual({ plan: 'team' });
    const withMeta = await p.json(['identity', 'tag', 'local', tagged.id, '--metadata', '{"crm":"A-17","seats":3}']);
    expect(withMeta).toMatchObject({ id: tagged.id, tags: { plan: 'team' }, metadata: { crm: 'A-17', seats: 3 } });
    expect((await p.json(['identity', 'ls', 'local', '--tag', 'plan=team'])).items).toHaveLength(1);
    const shown = await p.run(['identity', 'get', 'local', tagged.id]);
    expect(shown.stdout).toContain('A-17');
  });

  it('refuses nothing to change, bad JSON and metadata over 4 KiB, saying what to do', async () => {
    const nothing = await p.run(['identity', 'tag', 'local', '--user-id', 'alice']);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('--set');
    const badJson = await p.run(['identity', 'tag', 'local', '--user-id', 'alice', '--metadata', '{nope']);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('JSON object');
    const big = await p.run(['identity', 'tag', 'local', '--user-id', 'alice', '--metadata', JSON.stringify({ blob: 'x'.repeat(5000) })]);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/at most 4096/);
    expect((await p.json(['identity', 'get', 'local', '--user-id', 'alice'])).metadata).toEqual({ crm: 'A-17', seats: 3 });
  });
});

describe('identity check', () => {
  it('records a healthy identity, then an unhealthy one once its grant is revoked at the provider', async () => {
    const ok = await p.json(['identity', 'check', 'local', '--user-id', 'alice']);
    expect(ok).toMatchObject({ healthy: true, status: 200 });
    const shown = await p.json(['identity', 'get', 'local', '--user-id', 'alice']);
    expect(shown).toMatchObject({ healthy: true, lastCheckedAt: ok.checkedAt });

    await auth.revokeGrantsFor('alice');
    const bad = await p.run(['identity', 'check', 'local', '--user-id', 'alice']);
    expect(bad.code, bad.stderr).toBe(0);
    expect(bad.stdout).toContain('unhealthy (HTTP 401)');
    expect((await p.json(['identity', 'get', 'local', '--user-id', 'alice'])).healthy).toBe(false);
  });
});

describe('identity reconnect', () => {
  it('needs a server: an embedded project says so', async () => {
    const r = await p.run(['identity', 'reconnect', 'local', '--user-id', 'alice']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('RemoteBroker');
  });
});
