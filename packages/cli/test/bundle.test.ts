import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { openBundle, sealBundle } from '@everyauth/core';
import { assertBuilt, newProject, type Project } from './support/cli.js';
import { authorizeInProject, projectWithService } from './support/flow.js';

const SECRET = 'bundle-test-client-secret';
const PASSPHRASE = 'correct horse battery staple';
const API_BASE = 'https://api.bundle.example/v1';
const withPassphrase = { env: { EVERYAUTH_BUNDLE_PASSPHRASE: PASSPHRASE } };

let auth: AuthServer;
let p: Project;

beforeAll(async () => {
  assertBuilt();
  // Long-lived access tokens: only `identity refresh` refreshes, so listings compare exactly.
  auth = await startAuthServer({
    accessTokenTtl: 3600,
    clients: [{ client_id: 'bundle-app', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:3999/idp/callback'] }],
  });
  p = await projectWithService(auth, { id: 'idp', clientId: 'bundle-app', clientSecret: SECRET, apiBaseUrl: API_BASE });
  await authorizeInProject(p.dir, auth, 'idp', 'alice', { tags: { team: 'red' } });
  await authorizeInProject(p.dir, auth, 'idp', 'bob', { tenantId: 't1' });
});
afterAll(async () => {
  p?.remove();
  await auth?.close();
});

describe('export → wipe → import', () => {
  it('moves services, custom providers and identities to a new master key, and the tokens still work at the provider', async () => {
    const before = await p.json(['identity', 'ls', 'idp']);
    const aliceToken = (await p.json(['identity', 'get', 'idp', '--user-id', 'alice', '--show-token'])).accessToken as string;

    const exported = await p.run(['export', '--out', 'backup.ea'], withPassphrase);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('Exported 1 service, 2 identities and 1 custom provider');
    const file = join(p.dir, 'backup.ea');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    const envelope = JSON.parse(text);
    expect(envelope).toMatchObject({ format: 'everyauth-bundle', version: 1, kdf: { name: 'scrypt' }, cipher: { name: 'aes-256-gcm' } });
    for (const secret of [SECRET, aliceToken, 'alice', 'local-idp']) expect(text).not.toContain(secret);
    expect((await p.run(['export', '--out', 'backup.ea'], withPassphrase)).code).toBe(2); // no silent overwrite

    const oldKey = JSON.parse(readFileSync(join(p.dir, '.everyauth', 'master.key'), 'utf8')).current;
    rmSync(join(p.dir, '.everyauth'), { recursive: true });
    expect((await p.run(['init', '--base-url', 'http://127.0.0.1:3999'])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(p.dir, '.everyauth', 'master.key'), 'utf8')).current).not.toBe(oldKey);
    expect(await p.json(['service', 'ls'])).toEqual([]);

    const imported = await p.json(['import', 'backup.ea'], withPassphrase);
    expect(imported).toMatchObject({ providers: 1, services: 1, identities: 2 });
    const after = await p.json(['identity', 'ls', 'idp']);
    expect(after).toEqual(before);
    expect(await p.json(['service', 'get', 'idp'])).toMatchObject({
      providerId: 'local-idp',
      clientId: 'bundle-app',
      hasClientSecret: true,
      apiBaseUrls: [API_BASE],
    });

    // Importing again changes nothing.
    const services = await p.json(['service', 'ls']);
    expect((await p.run(['import', 'backup.ea'], withPassphrase)).code).toBe(0);
    expect(await p.json(['identity', 'ls', 'idp'])).toEqual(before);
    expect(await p.json(['service', 'ls'])).toEqual(services);

    // The access token opens under the new key and works; a refresh uses the imported client secret and refresh token.
    const got = await p.json(['identity', 'get', 'idp', '--user-id', 'alice', '--show-token']);
    expect(got.accessToken).toBe(aliceToken);
    expect((await auth.userinfo(got.accessToken)).status).toBe(200);
    const refreshes = auth.tokenRequests.byGrant.refresh_token ?? 0;
    const refreshed = await p.json(['identity', 'refresh', 'idp', '--user-id', 'bob', '--tenant-id', 't1', '--show-token']);
    expect(auth.tokenRequests.byGrant.refresh_token).toBe(refreshes + 1);
    expect((await auth.userinfo(refreshed.accessToken)).status).toBe(200);

    // Through a pipe as well.
    const piped = await p.run(['export'], withPassphrase);
    expect(piped.code).toBe(0);
    expect(JSON.parse(piped.stdout).format).toBe('everyauth-bundle');
    expect(piped.stderr).toContain('Exported 1 service, 2 identities');
    const dry = await p.json(['import', '-', '--dry-run'], { ...withPassphrase, input: piped.stdout });
    expect(dry).toMatchObject({ dryRun: true, services: 1, identities: 2 });
  });
});

describe('bad bundles import nothing', () => {
  let fresh: Project;
  let bundle: string;

  beforeAll(async () => {
    bundle = readFileSync(join(p.dir, 'backup.ea'), 'utf8');
    fresh = newProject();
    expect((await fresh.run(['init'])).code).toBe(0);
  });
  afterAll(() => fresh?.remove());

  async function importText(text: string, options = withPassphrase) {
    writeFileSync(join(fresh.dir, 'in.ea'), text);
    const r = await fresh.run(['import', 'in.ea'], options);
    expect(await fresh.json(['service', 'ls'])).toEqual([]);
    return r;
  }

  it('a wrong passphrase', async () => {
    const r = await importText(bundle, { env: { EVERYAUTH_BUNDLE_PASSPHRASE: 'not the passphrase' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the passphrase is wrong, or the file was changed');
    expect(r.stderr).toContain('Nothing was imported');
  });

  it('a changed ciphertext or header', async () => {
    const envelope = JSON.parse(bundle);
    const flipped = envelope.ciphertext[40] === 'A' ? 'B' : 'A';
    const tampered = { ...envelope, ciphertext: envelope.ciphertext.slice(0, 40) + flipped + envelope.ciphertext.slice(41) };
    expect((await importText(JSON.stringify(tampered))).stderr).toContain('the passphrase is wrong, or the file was changed');
    const relabelled = { ...envelope, createdAt: '2020-01-01T00:00:00.000Z' };
    expect((await importText(JSON.stringify(relabelled))).stderr).toContain('the passphrase is wrong, or the file was changed');
  });

  it('a cut-short file, something that is not a bundle, a newer version', async () => {
    expect((await importText(bundle.slice(0, 200))).stderr).toContain('not JSON');
    expect((await importText('{"hello": "world"}')).stderr).toContain('not an EveryAuth bundle');
    const newer = await importText(JSON.stringify({ ...JSON.parse(bundle), version: 2 }));
    expect(newer.code).toBe(1);
    expect(newer.stderr).toContain('version 2');
  });

  it('no passphrase, or no such file: usage errors', async () => {
    const r = await importText(bundle, { env: {} as Record<string, string> });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EVERYAUTH_BUNDLE_PASSPHRASE');
    const missing = await fresh.run(['import', 'nope.ea'], withPassphrase);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    writeFileSync(join(fresh.dir, 'pass.txt'), `${PASSPHRASE}\n`);
    const dry = await fresh.json(['import', 'in.ea', '--dry-run', '--passphrase-file', 'pass.txt']);
    expect(dry.identities).toBe(2);
  });

  it('a bundle under the right passphrase but the wrong master key cannot be mixed up: import re-seals with the target key', async () => {
    // The target's key differs from the source's; after import the target opens everything with its own key.
    const r = await fresh.run(['import', 'in.ea'], withPassphrase);
    expect(r.code, r.stderr).toBe(0);
    expect((await fresh.json(['identity', 'ls', 'idp'])).items).toHaveLength(2);
    const got = await fresh.json(['identity', 'get', 'idp', '--user-id', 'alice', '--show-token']);
    expect(got.accessToken.length).toBeGreaterThan(10);
    // With another key file the values no longer open: a clear error, not garbage.
    rmSync(join(fresh.dir, '.everyauth', 'master.key'));
    expect((await fresh.run(['init'])).code).toBe(0);
    const wrongKey = await fresh.run(['identity', 'get', 'idp', '--user-id', 'alice', '--show-token']);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('decryption_failed');
    expect(wrongKey.stderr).toContain('everyauth keys status');
  });
});

describe('bundles from before a field existed', () => {
  it("a service without apiBaseUrls imports with the provider's; one with a base URL putService would refuse imports nothing", async () => {
    const contents = await openBundle(readFileSync(join(p.dir, 'backup.ea'), 'utf8'), PASSPHRASE);
    const older = { ...contents, services: contents.services.map(({ apiBaseUrls: _, ...s }) => s) };
    const fresh = newProject();
    try {
      expect((await fresh.run(['init'])).code).toBe(0);
      writeFileSync(
        join(fresh.dir, 'bad.ea'),
        await sealBundle({ ...contents, services: [{ ...contents.services[0]!, apiBaseUrls: ['https://10.0.0.1'] }] }, PASSPHRASE),
      );
      const bad = await fresh.run(['import', 'bad.ea'], withPassphrase);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('names an IP address');
      expect(await fresh.json(['service', 'ls'])).toEqual([]);

      writeFileSync(join(fresh.dir, 'old.ea'), await sealBundle(older as typeof contents, PASSPHRASE));
      const r = await fresh.run(['import', 'old.ea'], withPassphrase);
      expect(r.code, r.stderr).toBe(0);
      const service = await fresh.json(['service', 'get', 'idp']);
      expect(service).toMatchObject({ providerId: 'local-idp', clientId: 'bundle-app' });
      expect(service).not.toHaveProperty('apiBaseUrls');
    } finally {
      fresh.remove();
    }
  });
});
