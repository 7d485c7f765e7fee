import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, openStore, type Store } from '@everyauth/core';
import { leaseLockState } from '../src/store/lease-locks.js';
import type { EventDraft, RefreshWrite } from '../src/store/store.js';
import { STORES, createTestDatabase } from './support/broker.js';

/**
 * The refresh's statements on both databases: the lease claim that returns the row it claimed, and
 * the write that gives the lease back and stores its event in one transaction.
 */
describe.each(STORES)('refresh statements on %s', (kind) => {
  let dir: string;
  let database: { url: string; drop(): Promise<void> } | undefined;
  /** Two stores on one database: two processes (on PostgreSQL, two lock sessions). */
  let mine: Store;
  let theirs: Store;
  let pool: pg.Pool | undefined;
  const T = 1_800_000_000_000;
  /** A new identity per test: an advisory lock a test leaves held (in a session that lives on) stays its own. */
  let ID = '';
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'everyauth-refresh-store-'));
    if (kind === 'postgres') {
      database = await createTestDatabase();
      mine = await openStore(database.url);
      theirs = await openStore(database.url);
      pool = new pg.Pool({ connectionString: database.url, max: 1 });
    } else {
      mine = await openSqliteStore({ path: join(dir, 'everyauth.db') });
      theirs = await openSqliteStore({ path: join(dir, 'everyauth.db') });
    }
    await mine.putProvider('custom-idp', '{}', T);
    await mine.putService({
      id: 'crm',
      provider_id: 'custom-idp',
      client_id: 'c',
      client_secret: null,
      scopes: '[]',
      params: '{}',
      variables: '{}',
      created_at: T,
      updated_at: T,
    });
  });
  afterAll(async () => {
    await pool?.end();
    await mine?.close();
    await theirs?.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    ID = `idn_refreshstatements${String(++n).padStart(4, '0')}`;
    await mine.db.deleteFrom('events').execute();
    await mine.db.deleteFrom('identities').execute();
    await mine.db
      .insertInto('identities')
      .values({
        id: ID,
        service_id: 'crm',
        tenant_id: '',
        user_id: 'u1',
        status: 'active',
        tokens: 'sealed-old',
        expires_at: T + 1000,
        scope: 'read',
        profile: '{}',
        tags: '{"team":"a"}',
        version: 3,
        lease_owner: null,
        lease_until: null,
        last_refresh_at: null,
        created_at: T,
        updated_at: T,
      })
      .execute();
  });

  const write: RefreshWrite = {
    tokens: 'sealed-new',
    expires_at: T + 3_600_000,
    scope: 'read',
    last_refresh_at: T + 10,
    failing_since: null,
  };
  const draft = (id = 'evt_0001'): EventDraft => ({ id, type: 'identity.refreshed', data: '{}', at: T + 10 });
  const row = async () => (await mine.getIdentity(ID))!;
  const lockHeld = async () => (pool ? (await leaseLockState(pool, ID)).held : undefined);

  it('a claim returns the row as claimed, with the versions of its service and custom provider; a second holder is refused', async () => {
    const claim = await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    expect(claim?.row).toEqual({ ...(await row()), lease_owner: 'me', lease_until: T + 30_000 });
    expect(claim).toMatchObject({ serviceVersion: T, providerVersion: T });
    expect(await theirs.claimLease(ID, 3, 'them', T + 1, T + 30_001)).toBeUndefined();
    expect(await mine.claimLease(ID, 3, 'me-again', T + 1, T + 30_001)).toBeUndefined();
    expect((await row()).lease_owner).toBe('me');
    if (kind === 'postgres') expect(await lockHeld()).toBe(true);
  });

  it('a claim is refused on another version, a status other than active, or during a recorded cool-down, and leaves no lock behind', async () => {
    expect(await theirs.claimLease(ID, 2, 'them', T, T + 30_000)).toBeUndefined();
    await mine.db
      .updateTable('identities')
      .set({ refresh_retry_at: T + 500 })
      .where('id', '=', ID)
      .execute();
    expect(await theirs.claimLease(ID, 3, 'them', T, T + 30_000)).toBeUndefined();
    await mine.db.updateTable('identities').set({ refresh_retry_at: null, status: 'needs_reauth' }).where('id', '=', ID).execute();
    expect(await theirs.claimLease(ID, 3, 'them', T, T + 30_000)).toBeUndefined();
    expect((await row()).lease_owner).toBeNull();
    if (kind === 'postgres') expect(await lockHeld()).toBe(false);
    // Nothing held on either side: the other process claims it.
    await mine.db.updateTable('identities').set({ status: 'active' }).where('id', '=', ID).execute();
    expect((await mine.claimLease(ID, 3, 'me', T, T + 30_000))?.row.lease_owner).toBe('me');
  });

  it('an expired lease, or one whose holder is gone (takeOver), may be claimed', async () => {
    await theirs.claimLease(ID, 3, 'them', T, T + 30_000);
    if (kind === 'postgres') await theirs.releaseLease(ID, 'nobody'); // their lock is given back, their lease stays
    expect(await mine.claimLease(ID, 3, 'me', T + 1, T + 30_001)).toBeUndefined();
    expect((await mine.claimLease(ID, 3, 'me', T + 1, T + 30_001, 'them'))?.row.lease_owner).toBe('me');
    expect((await theirs.claimLease(ID, 3, 'them', T + 30_001, T + 60_000))?.row.lease_owner).toBe(
      kind === 'postgres' ? undefined : 'them',
    );
  });

  it('the write stores the tokens, bumps the version, gives the lease back and stores its event, in one go', async () => {
    await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    const written = await mine.completeRefresh(ID, 3, 'me', write, T + 10, draft());
    expect(written).toEqual(await row());
    expect(written).toMatchObject({ tokens: 'sealed-new', version: 4, lease_owner: null, lease_until: null, updated_at: T + 10 });
    const events = await mine.listEvents({ limit: 10 });
    expect(events).toEqual([
      {
        id: 'evt_0001',
        type: 'identity.refreshed',
        service_id: 'crm',
        identity_id: ID,
        user_id: 'u1',
        tenant_id: '',
        tags: '{"team":"a"}',
        data: '{}',
        at: T + 10,
      },
    ]);
    if (kind === 'postgres') expect(await lockHeld()).toBe(false);
  });

  it('a holder that lost its lease writes nothing: no tokens, no event', async () => {
    await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    expect(await theirs.completeRefresh(ID, 3, 'them', write, T + 10, draft())).toBeUndefined();
    expect(await mine.completeRefresh(ID, 2, 'me', write, T + 10, draft())).toBeUndefined();
    expect(await row()).toMatchObject({ tokens: 'sealed-old', version: 3, lease_owner: 'me' });
    expect(await mine.listEvents({ limit: 10 })).toEqual([]);
  });

  it('a write that fails (its event cannot be stored) keeps the old tokens and the lease: nothing half-written', async () => {
    await mine.insertEvent({ ...draft('evt_taken'), service_id: 'crm', identity_id: ID, user_id: 'u1', tenant_id: '', tags: '{}' });
    await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    await expect(mine.completeRefresh(ID, 3, 'me', write, T + 10, draft('evt_taken'))).rejects.toThrow();
    expect(await row()).toMatchObject({ tokens: 'sealed-old', version: 3, lease_owner: 'me', lease_until: T + 30_000 });
    expect((await mine.listEvents({ limit: 10 })).map((e) => e.id)).toEqual(['evt_taken']);
    // Retried, fenced as before, it lands.
    expect((await mine.completeRefresh(ID, 3, 'me', write, T + 11, draft('evt_0002')))?.tokens).toBe('sealed-new');
  });

  const failureDraft = (id = 'evt_fail'): EventDraft => ({ id, type: 'identity.refresh_failed', data: '{"error":"x"}', at: T + 10 });
  const failure = { refresh_failed_at: T + 10, refresh_failure: '5xx', refresh_retry_at: T + 60_010, refresh_failures: 1 };

  it('a failed refresh gives the lease back with the failure, the start of the failures and its event, in one go', async () => {
    await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    const written = await mine.failRefresh(ID, 'me', T + 10, { failure, event: failureDraft() });
    expect(written).toEqual(await row());
    expect(written).toMatchObject({
      ...failure,
      tokens: 'sealed-old',
      version: 3,
      status: 'active',
      lease_owner: null,
      failing_since: T + 10,
    });
    expect(written!.updated_at).toBe(T); // no new status: the row's version and updated_at stay
    expect((await mine.listEvents({ limit: 10 })).map((e) => [e.id, e.type, e.identity_id, e.tags])).toEqual([
      ['evt_fail', 'identity.refresh_failed', ID, '{"team":"a"}'],
    ]);
    if (kind === 'postgres') expect(await lockHeld()).toBe(false);
    // A second failure keeps the start of the run; a new status is written with its time.
    await mine.claimLease(ID, 3, 'me', T + 70_000, T + 100_000);
    const again = await mine.failRefresh(ID, 'me', T + 70_010, { status: 'needs_reauth', event: failureDraft('evt_fail2') });
    expect(again).toMatchObject({ status: 'needs_reauth', updated_at: T + 70_010, failing_since: T + 10, lease_owner: null });
  });

  it('a failed refresh whose lease was lost writes nothing: no status, no failure, no event', async () => {
    await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    expect(await theirs.failRefresh(ID, 'them', T + 10, { status: 'needs_reauth', failure, event: failureDraft() })).toBeUndefined();
    expect(await row()).toMatchObject({ status: 'active', refresh_failure: null, failing_since: null, lease_owner: 'me' });
    expect(await mine.listEvents({ limit: 10 })).toEqual([]);
  });

  it('a failed refresh whose write fails keeps the lease and records nothing, and gives the lock back', async () => {
    await mine.insertEvent({ ...failureDraft('evt_taken'), service_id: 'crm', identity_id: ID, user_id: 'u1', tenant_id: '', tags: '{}' });
    await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    await expect(mine.failRefresh(ID, 'me', T + 10, { failure, event: failureDraft('evt_taken') })).rejects.toThrow();
    expect(await row()).toMatchObject({ refresh_failure: null, failing_since: null, lease_owner: 'me' });
    if (kind === 'postgres') expect(await lockHeld()).toBe(false);
  });

  it('every write of a service or provider changes its version, even within one millisecond', async () => {
    const before = (await mine.getService('crm'))!;
    await mine.putService({ ...before, client_id: 'c2', updated_at: before.updated_at });
    const after = (await mine.getService('crm'))!;
    expect(after.client_id).toBe('c2');
    expect(after.updated_at).toBeGreaterThan(before.updated_at);
    const provider = (await mine.getProvider('custom-idp'))!;
    await mine.putProvider('custom-idp', '{"changed":true}', provider.updated_at);
    expect((await mine.getProvider('custom-idp'))!.updated_at).toBeGreaterThan(provider.updated_at);
    const claim = await mine.claimLease(ID, 3, 'me', T, T + 30_000);
    expect(claim).toMatchObject({ serviceVersion: after.updated_at, providerVersion: provider.updated_at + 1 });
  });
});
