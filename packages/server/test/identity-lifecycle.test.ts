/**
 * An identity over time on the server (issue 15): tags and metadata by PATCH, counts in /metrics,
 * and a grant revoked at the provider → needs_reauth → webhook → reconnect link → the same
 * identity active again; a reconnect that comes back with another account is refused unless allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReauthorizationRequired } from '@everyauth/core';
import { reconnectLink } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { receiver, waitFor, type Receiver } from './support/receiver.js';
import { hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;
let hook: Receiver;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  t = await startTestServer(as, { server: { webhooks: { pollMs: 50 } } });
  hook = await receiver([]);
  await t.request('/v1/webhooks', {
    method: 'POST',
    json: { url: hook.url, events: ['identity.needs_reauth', 'identity.reconnected'] },
  });
});
afterAll(async () => {
  await t?.close();
  await hook?.close();
  await as?.close();
});

const json = async (r: Response) => (await r.json()) as any;

/** Opens a link as a browser would: keeps its cookie, logs in at the provider as `login`, follows the callback. */
async function openLink(url: string, login: string): Promise<Response> {
  const start = await fetch(url, { redirect: 'manual' });
  expect(start.status, await start.clone().text()).toBe(302);
  const cookie = start.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const callback = await as.authorize(start.headers.get('location')!, { login });
  return fetch(callback, { redirect: 'manual', headers: { cookie } });
}

describe('metadata', () => {
  it('PATCH replaces tags and metadata, keeps the rest, and refuses oversized metadata or unknown ids', async () => {
    await hostedFlow(t, as, { userId: 'meta-user', tags: { plan: 'pro' } });
    const { id } = (await json(await t.request('/v1/identities?userId=meta-user'))).items[0];
    const patched = await json(await t.request(`/v1/identities/${id}`, { method: 'PATCH', json: { metadata: { crm: 'C-1' } } }));
    expect(patched).toMatchObject({ id, tags: { plan: 'pro' }, metadata: { crm: 'C-1' }, status: 'active' });
    const big = await t.request(`/v1/identities/${id}`, { method: 'PATCH', json: { metadata: { blob: 'x'.repeat(5000) } } });
    expect(big.status).toBe(400);
    expect(await json(big)).toMatchObject({ error: 'invalid_input', field: 'metadata' });
    expect((await t.request(`/v1/identities/${id}`, { method: 'PATCH', json: {} })).status).toBe(400);
    expect((await t.request('/v1/identities/idn_nope', { method: 'PATCH', json: { tags: {} } })).status).toBe(404);
    expect((await t.request(`/v1/identities/${id}`, { method: 'PATCH', key: t.readerKey, json: { tags: {} } })).status).toBe(403);
    const remote = await t.remote().updateIdentity(id, { tags: { plan: 'team' } });
    expect(remote).toMatchObject({ tags: { plan: 'team' }, metadata: { crm: 'C-1' } });
  });

  it('counts identities per service and status in /metrics', async () => {
    const metrics = await (await t.request('/metrics', { key: null })).text();
    const active = (await json(await t.request('/v1/identities?serviceId=local&status=active'))).items.length;
    expect(metrics).toContain(`everyauth_identities{service="local",status="active"} ${active}`);
  });
});

describe('reconnect', () => {
  it('a revoked grant → needs_reauth → webhook → reconnect link → the same identity, active, with new tokens', async () => {
    await hostedFlow(t, as, { userId: 'rc-user', tenantId: 'acme', tags: { team: 'red' } });
    const before = (await json(await t.request('/v1/identities?userId=rc-user'))).items[0];
    await t.request(`/v1/identities/${before.id}`, { method: 'PATCH', json: { metadata: { crm: 'R-9' } } });
    const oldToken = (await t.remote().getIdentity('local', before.id))!.accessToken;

    await as.revokeGrantsFor('rc-user');
    const err = await t
      .remote(t.readerKey)
      .getIdentity('local', before.id, { force: true })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ReauthorizationRequired);
    expect(err.identityStatus).toBe('needs_reauth');
    expect(err.reconnectUrl).toMatch(new RegExp(`^${t.url}/v1/reconnect\\?t=`));
    const event = await waitFor(async () => hook.received.map((r) => JSON.parse(r.body)).find((b) => b.type === 'identity.needs_reauth'));
    expect(event).toMatchObject({ identityId: before.id, userId: 'rc-user', tenantId: 'acme', tags: { team: 'red' } });

    const done = await openLink(err.reconnectUrl, 'rc-user');
    expect(done.status).toBe(200);
    const after = await json(await t.request(`/v1/identities/${before.id}`));
    expect(after).toMatchObject({ id: before.id, status: 'active', tags: { team: 'red' }, metadata: { crm: 'R-9' }, tenantId: 'acme' });
    const fresh = await t.remote().getIdentity('local', before.id);
    expect(fresh!.accessToken).not.toBe(oldToken);
    expect((await as.userinfo(fresh!.accessToken)).status).toBe(200);
    await waitFor(async () => hook.received.some((r) => JSON.parse(r.body).type === 'identity.reconnected'));
    const events = await t.remote().listEvents({ identityId: before.id });
    expect(events.at(-1)).toMatchObject({ type: 'identity.reconnected', data: { previousStatus: 'needs_reauth' } });
  });

  it('refuses a grant for another provider account unless the link allows it', async () => {
    await hostedFlow(t, as, { userId: 'acct-user' });
    const { id } = (await json(await t.request('/v1/identities?userId=acct-user'))).items[0];
    const remote = t.remote(t.readerKey);
    const strict = await remote.createReconnectLink(id, { finishedUrl: '/done' });
    const refused = await openLink(strict.url, 'someone-else');
    expect(refused.status).toBe(303);
    const to = new URL(refused.headers.get('location')!, t.url);
    expect(to.pathname).toBe('/done');
    expect(to.searchParams.get('error')).toBe('account_mismatch');
    expect((await json(await t.request(`/v1/identities/${id}`))).profile.id).toBe('acct-user');

    const lenient = await remote.createReconnectLink(id, { allowAccountChange: true });
    expect((await openLink(lenient.url, 'someone-else')).status).toBe(200);
    const after = await json(await t.request(`/v1/identities/${id}`));
    expect(after).toMatchObject({ id, userId: 'acct-user', profile: { id: 'someone-else' } });
  });

  it('refuses an altered or expired link, an unknown identity and a foreign finishedUrl', async () => {
    const { url } = await t.remote().createSession({ serviceId: 'local', userId: 'x' });
    const altered = await fetch(url.replace('/v1/sessions/start', '/v1/reconnect'), { redirect: 'manual' });
    expect(altered.status).toBe(400);
    expect(await altered.text()).toContain('Invalid reconnect link');

    await hostedFlow(t, as, { userId: 'old-link-user' });
    const { id } = (await json(await t.request('/v1/identities?userId=old-link-user'))).items[0];
    const expired = reconnectLink(t.url, t.app.everyauth.vault, id, { lifetimeMs: -1 });
    const page = await fetch(expired.url, { redirect: 'manual' });
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('Reconnect link expired');

    expect((await t.request('/v1/identities/idn_nope/reconnect', { method: 'POST', json: {} })).status).toBe(404);
    const badFinish = await t.request(`/v1/identities/${id}/reconnect`, { method: 'POST', json: { finishedUrl: 'https://evil.test/' } });
    expect(badFinish.status).toBe(400);
    expect(await json(badFinish)).toMatchObject({ error: 'invalid_input' });
  });
});
