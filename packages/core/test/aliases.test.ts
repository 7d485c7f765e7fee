import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBroker, Vault, createKeyRing, openStore } from '../src/index.js';

let broker: LocalBroker;
beforeAll(async () => {
  broker = new LocalBroker({
    store: await openStore(':memory:'),
    vault: Vault.fromKeyRing(createKeyRing()),
    baseUrl: 'http://localhost:3000',
  });
});
afterAll(() => broker?.close());

describe("Fusebit EveryAuth's service ids", () => {
  it('lists the aliases with the provider they name', async () => {
    const found = await broker.listProviders({ search: 'sfdc' });
    expect(found).toEqual([expect.objectContaining({ id: 'sfdc', aliasOf: 'salesforce', custom: false })]);
    expect((await broker.listProviders()).find((p) => p.id === 'salesforce')?.aliasOf).toBeUndefined();
  });

  it("runs authorize('sfdc', …) unchanged: a service named sfdc uses Salesforce's endpoints and its own callback", async () => {
    await broker.putService({ id: 'sfdc', clientId: 'sf-client', clientSecret: 'sf-secret' });
    expect((await broker.getService('sfdc')).providerId).toBe('sfdc');
    const started = await broker.beginAuthorization({ serviceId: 'sfdc', userId: 'u1' });
    const url = new URL(started.url);
    expect(`${url.origin}${url.pathname}`).toBe('https://login.salesforce.com/services/oauth2/authorize');
    expect(url.searchParams.get('client_id')).toBe('sf-client');
    expect(url.searchParams.get('redirect_uri')).toBe('http://localhost:3000/sfdc/callback');
  });

  it('refuses to delete or replace an alias, as any built-in provider', async () => {
    await expect(broker.deleteProvider('githuboauth')).rejects.toMatchObject({ code: 'invalid_input' });
  });
});
