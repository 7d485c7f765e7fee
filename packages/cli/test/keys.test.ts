import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, readKeyRing, Vault, type KeyRing, type Store } from '@everyauth/core';
import { assertBuilt, newProject, type Project } from './support/cli.js';

const COUNT = 10_000;
const idOf = (i: number) => `idn_rot${String(i).padStart(6, '0')}`;
const tokensOf = (i: number) => ({ a: `access-${i}`, r: `refresh-${i}`, t: 'bearer', n: {} });

let p: Project;
let keyFile: string;
let dbFile: string;

beforeAll(async () => {
  assertBuilt();
  p = newProject();
  expect((await p.run(['init'])).code).toBe(0);
  keyFile = join(p.dir, '.everyauth', 'master.key');
  dbFile = join(p.dir, '.everyauth', 'everyauth.db');
  // 10,000 identities and a service, written straight into the store under the key init made.
  const vault = Vault.fromKeyRing(await readKeyRing(keyFile));
  const store = await openStore(dbFile);
  try {
    const now = Date.now();
    await store.putService({
      id: 'svc',
      provider_id: 'google',
      client_id: 'cid',
      client_secret: vault.seal('the-client-secret', 'service:svc'),
      scopes: '[]',
      params: '{}',
      variables: '{}',
      created_at: now,
      updated_at: now,
    });
    await store.db.transaction().execute(async (trx) => {
      for (let start = 0; start < COUNT; start += 500) {
        const rows = [];
        for (let i = start; i < start + 500; i++) {
          rows.push({
            id: idOf(i),
            service_id: 'svc',
            tenant_id: '',
            user_id: `user-${i}`,
            status: 'active' as const,
            tokens: vault.sealJson(tokensOf(i), `identity:${idOf(i)}`),
            expires_at: now + 3_600_000,
            scope: null,
            profile: '{}',
            tags: '{}',
            version: 1,
            lease_owner: null,
            lease_until: null,
            last_refresh_at: null,
            created_at: now,
            updated_at: now,
          });
        }
        await trx.insertInto('identities').values(rows).execute();
      }
    });
  } finally {
    await store.close();
  }
});
afterAll(() => p?.remove());

/** Opens every sealed value with the key ring on disk; returns how many values sit under each key. */
async function checkEverythingOpens(): Promise<Record<string, number>> {
  const ring: KeyRing = await readKeyRing(keyFile);
  const vault = Vault.fromKeyRing(ring);
  const store: Store = await openStore(dbFile);
  try {
    const byKey: Record<string, number> = {};
    const rows = await store.db.selectFrom('identities').select(['id', 'tokens']).orderBy('id').execute();
    expect(rows).toHaveLength(COUNT);
    rows.forEach((row, i) => {
      expect(vault.openJson(row.tokens, `identity:${row.id}`)).toEqual(tokensOf(i));
      const kid = vault.keyIdOf(row.tokens);
      byKey[kid] = (byKey[kid] ?? 0) + 1;
    });
    const service = await store.getService('svc');
    expect(vault.open(service!.client_secret!, 'service:svc')).toBe('the-client-secret');
    return byKey;
  } finally {
    await store.close();
  }
}

describe('keys rotate', () => {
  it('survives a SIGKILL half-way: every value stays readable, and running it again finishes the job', async () => {
    const oldKey = (await readKeyRing(keyFile)).current;
    const status = await p.json(['keys', 'status']);
    expect(status).toMatchObject({ current: oldKey, pending: 0, total: COUNT + 1 });

    // Rotate slowly enough (a pause per batch) that the kill lands in the middle, then kill it for real.
    const child = p.spawn(['keys', 'rotate', '--batch-size', '200', '--pause-ms', '20']);
    let stderr = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const percents = [...stderr.matchAll(/Re-encrypting: (\d+)%/g)].map((m) => Number(m[1]));
      if (percents.some((n) => n >= 50) && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    child.stdin!.end();
    expect(await exited).toBe('SIGKILL');
    expect(stderr).toContain('Added key');

    const ring = await readKeyRing(keyFile);
    expect(ring.keys.map((k) => k.id)).toContain(oldKey);
    expect(ring.current).not.toBe(oldKey);
    const midway = await checkEverythingOpens();
    expect(midway[oldKey], 'some values still under the old key').toBeGreaterThan(0);
    expect(midway[ring.current], 'some values already under the new key').toBeGreaterThan(COUNT * 0.3);

    const pending = await p.json(['keys', 'status']);
    expect(pending.pending).toBeGreaterThan(0);
    expect(pending.keys.find((k: { id: string }) => k.id === oldKey).values).toBe(pending.pending);

    const resumed = await p.run(['keys', 'rotate']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`Continuing the rotation to key ${ring.current}`);
    expect(resumed.stdout).toContain(`Re-encrypted ${pending.pending} value(s)`);
    expect((await readKeyRing(keyFile)).current).toBe(ring.current); // no third key

    const after = await checkEverythingOpens();
    expect(after).toEqual({ [ring.current]: COUNT });
    expect(await p.json(['keys', 'status'])).toMatchObject({ current: ring.current, pending: 0, unknownKeyValues: 0 });
    expect((await p.json(['keys', 'rotate', '--resume'])).resealed).toBe(0);

    // The old key can go now; the current one never.
    const current = await p.run(['keys', 'retire', ring.current]);
    expect(current.code).toBe(1);
    expect(current.stderr).toContain('current key');
    expect((await p.run(['keys', 'retire', oldKey])).code).toBe(0);
    expect((await readKeyRing(keyFile)).keys.map((k) => k.id)).toEqual([ring.current]);
    await checkEverythingOpens();
  }, 120_000);

  it('refuses to retire a key that still seals values', async () => {
    const first = (await p.json(['keys', 'rotate'])).currentKey as string;
    expect(first).toBeDefined();
    // A value re-sealed under the previous key, as a process still holding the old ring would write it.
    const ring = await readKeyRing(keyFile);
    const previous = ring.keys.find((k) => k.id !== ring.current)!.id;
    const oldVault = Vault.fromKeyRing({ current: previous, keys: ring.keys });
    const store = await openStore(dbFile);
    await store.db
      .updateTable('identities')
      .set({ tokens: oldVault.sealJson(tokensOf(7), `identity:${idOf(7)}`) })
      .where('id', '=', idOf(7))
      .execute();
    await store.close();
    const refused = await p.run(['keys', 'retire', previous]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('still seals 1 value');
    const status = await p.run(['keys', 'status']);
    expect(status.stderr).toContain('1 value(s) are not yet under the current key');
    const rotate = await p.json(['keys', 'rotate']); // finishes the previous rotation rather than adding a key
    expect(rotate).toMatchObject({ currentKey: ring.current, resealed: 1 });
  });

  it('fails clearly on a missing, unreadable or world-readable key file', async () => {
    chmodSync(keyFile, 0o644);
    const open = await p.run(['keys', 'status']);
    expect(open.code).toBe(1);
    expect(open.stderr).toContain('chmod 600');
    chmodSync(keyFile, 0o600);
    const saved = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, 'not a key', { mode: 0o600 });
    const bad = await p.run(['identity', 'ls', 'svc']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('master.key');
    writeFileSync(keyFile, saved, { mode: 0o600 });
    expect((await p.run(['keys', 'status'])).code).toBe(0);
  });
});
