import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError, createKeyRing, openStore } from '@everyauth/core';
import { createApiKey, serverLogger, startServer, verifyWebhookSignature } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { receiver, waitFor } from './support/receiver.js';
import { APP_ORIGIN, hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
const servers: TestServer[] = [];

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
});
afterAll(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  await as?.close();
});

async function server(options: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
  const s = await startTestServer(as, options);
  servers.push(s);
  return s;
}

const json = async (r: Response) => (await r.json()) as any;

describe('rate limit', () => {
  it('limits each API key on its own and answers 429 with a clear error', async () => {
    const t = await server({ server: { apiKeyRateLimit: { max: 5, timeWindowMs: 60_000 } } });
    for (let i = 0; i < 5; i++) expect((await t.request('/v1/services', { key: t.readerKey })).status).toBe(200);
    const limited = await t.request('/v1/services', { key: t.readerKey });
    expect(limited.status).toBe(429);
    expect(await json(limited)).toMatchObject({ error: 'rate_limited', retryable: true });
    expect((await t.request('/v1/services', { key: t.adminKey })).status).toBe(200);
    expect((await t.request('/health', { key: null })).status).toBe(200);
  });
});

describe('webhooks', () => {
  it('POSTs signed events, retries with backoff after a failure, and shows the deliveries', async () => {
    const t = await server({ server: { webhooks: { pollMs: 50, baseDelayMs: 100 } } });
    const hook = await receiver([500]);
    try {
      const created = await t.request('/v1/webhooks', {
        method: 'POST',
        json: { url: hook.url, events: ['identity.created', 'identity.refreshed', 'identity.deleted'] },
      });
      expect(created.status).toBe(201);
      const { id, secret } = await json(created);
      expect(secret).toMatch(/^whsec_/);
      expect(JSON.stringify(await json(await t.request('/v1/webhooks')))).not.toContain(secret);

      await hostedFlow(t, as, { userId: 'hook-user' });
      await t.request('/v1/services/local/token?userId=hook-user&force=true');
      const deliveries = await waitFor(async () => {
        const list = await json(await t.request(`/v1/webhooks/${id}/deliveries`));
        return list.length === 2 && list.every((d: any) => d.status === 'delivered') && list;
      });
      expect(deliveries.map((d: any) => d.eventType)).toEqual(['identity.created', 'identity.refreshed']);
      expect(deliveries[0]).toMatchObject({ attempts: 2, responseStatus: 200 });
      expect(deliveries[1]).toMatchObject({ attempts: 1 });

      expect(hook.received).toHaveLength(3); // created (500), created again, refreshed
      for (const r of hook.received) {
        expect(verifyWebhookSignature(secret, String(r.headers['everyauth-signature']), r.body)).toBe(true);
        expect(verifyWebhookSignature(secret, String(r.headers['everyauth-signature']), `${r.body} `)).toBe(false);
        expect(r.body).not.toMatch(/accessToken|refresh_token/);
      }
      const event = JSON.parse(hook.received[0]!.body);
      expect(event).toMatchObject({ type: 'identity.created', userId: 'hook-user', serviceId: 'local' });
      const metrics = await (await t.request('/metrics', { key: null })).text();
      expect(metrics).toMatch(/everyauth_refreshes_total\{outcome="refreshed"\} 1/);
      expect(metrics).toMatch(/everyauth_webhook_deliveries_total\{outcome="retry"\} 1/);
    } finally {
      await hook.close();
    }
  });

  it('marks a delivery failed after the last attempt', async () => {
    const t = await server({ server: { webhooks: { pollMs: 50, baseDelayMs: 20, maxAttempts: 2 } } });
    const hook = await receiver([500, 503, 500]);
    try {
      const { id } = await json(await t.request('/v1/webhooks', { method: 'POST', json: { url: hook.url, events: ['identity.created'] } }));
      await hostedFlow(t, as, { userId: 'fail-user' });
      const [d] = await waitFor(async () => {
        const list = await json(await t.request(`/v1/webhooks/${id}/deliveries`));
        return list[0]?.status === 'failed' && list;
      });
      expect(d).toMatchObject({ attempts: 2, responseStatus: 503, lastError: 'HTTP 503' });
    } finally {
      await hook.close();
    }
  });
});

describe('background refresh', () => {
  it('refreshes tokens ahead of expiry without a request', async () => {
    const short = await startAuthServer({ accessTokenTtl: 4 });
    const t = await startTestServer(short, { server: { backgroundRefresh: { intervalMs: 100, aheadMs: 3_000 } } });
    try {
      await hostedFlow(t, short, { userId: 'idle' });
      const before = short.tokenRequests.byGrant.refresh_token ?? 0;
      const refreshed = await waitFor(async () => {
        const list = await json(await t.request('/v1/identities?userId=idle'));
        return list.items[0]?.lastRefreshAt && list.items[0];
      });
      expect(refreshed.status).toBe('active');
      expect((short.tokenRequests.byGrant.refresh_token ?? 0) - before).toBeGreaterThanOrEqual(1);
      const metrics = await (await t.request('/metrics', { key: null })).text();
      expect(metrics).toMatch(/everyauth_background_refreshes_total\{outcome="done"\} [1-9]/);
    } finally {
      await t.close();
      await short.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight refresh finish and store its tokens before closing', async () => {
    const t = await startTestServer(as);
    await hostedFlow(t, as, { userId: 'closing' });
    as.failNextTokenRequests(1, { delayMs: 700 });
    const before = as.tokenRequests.byGrant.refresh_token ?? 0;
    const pending = t.request('/v1/services/local/token?userId=closing&force=true');
    await waitFor(async () => (as.tokenRequests.byGrant.refresh_token ?? 0) > before && true);
    const closed = t.app.close();
    const r = await pending;
    await closed;
    expect(r.status).toBe(200);
    const fresh = await json(r);
    const row = await t.store.getIdentity(fresh.identityId);
    expect(row?.last_refresh_at).toBeTypeOf('number');
    expect(row?.lease_owner).toBeNull();
    await t.store.close();
  });
});

describe('logs', () => {
  it('never carry tokens, API keys, codes, state or cookies', async () => {
    let logs = '';
    const sink = new Writable({ write: (chunk, _enc, done) => void ((logs += chunk), done()) });
    const t = await server({ server: { logger: serverLogger('debug', sink) } });
    await hostedFlow(t, as, { userId: 'logged', finishedUrl: `${APP_ORIGIN}/done` });
    const fresh = await json(await t.request('/v1/services/local/token?userId=logged&force=true'));
    await t.request('/v1/services', { key: `${t.adminKey}x` });
    await t.request('/v1/services/local/callback?code=secret-code-123&state=secret-state-456');
    expect(logs).toContain('"path":"/v1/services/local/token"');
    for (const secret of [fresh.accessToken, t.adminKey, t.readerKey, 'secret-code-123', 'secret-state-456', 'everyauth_flow_', 'ea1.']) {
      expect(logs, secret).not.toContain(secret);
    }
  });

  it('hold no line per request at info, the default level', async () => {
    let logs = '';
    const sink = new Writable({ write: (chunk, _enc, done) => void ((logs += chunk), done()) });
    const t = await server({ server: { logger: serverLogger('info', sink) } });
    const before = logs.length;
    expect((await t.request('/v1/services')).status).toBe(200);
    expect(logs.slice(before)).toBe('');
  });
});

describe('startServer', () => {
  it('takes the master key, allowed origins and rate limit from the environment, and closes cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'everyauth-start-'));
    const path = join(dir, 'everyauth.db');
    const env = {
      EVERYAUTH_MASTER_KEY: JSON.stringify(createKeyRing()),
      EVERYAUTH_ALLOWED_ORIGINS: 'https://app.example, https://other.example',
      EVERYAUTH_RATE_LIMIT: '5',
    };
    const seed = await openStore(path);
    const { key } = await createApiKey(seed, { name: 'start', scopes: ['admin'] });
    await seed.close();
    const running = await startServer({ port: 0, store: path, env, logLevel: 'silent', sandbox: false });
    try {
      const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const post = (finishedUrl: string) =>
        fetch(`${running.url}/v1/sessions`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ serviceId: 'svc', userId: 'u', finishedUrl }),
        });
      const service = await fetch(`${running.url}/v1/services/svc`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ providerId: 'github', clientId: 'c', clientSecret: 's' }),
      });
      expect(service.status).toBe(200);
      expect((await service.json()) as any).toMatchObject({ redirectUrl: `${running.url}/svc/callback` });
      expect((await post('https://app.example/done')).status).toBe(201);
      expect((await post('https://other.example/done')).status).toBe(201);
      const evil = await post('https://evil.example/done');
      expect(evil.status).toBe(400);
      expect((await evil.json()) as any).toMatchObject({ field: 'finishedUrl' });
      expect((await fetch(`${running.url}/v1/services`, { headers })).status).toBe(200);
      expect((await fetch(`${running.url}/v1/services`, { headers })).status).toBe(429); // the 6th request in a minute
    } finally {
      await running.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(fetch(`${running.url}/health`)).rejects.toThrow();
  });

  it('refuses to start on a bad variable (rate limiting would have silently turned off), before opening the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'everyauth-start-'));
    try {
      const path = join(dir, 'everyauth.db');
      const env = { EVERYAUTH_MASTER_KEY: JSON.stringify(createKeyRing()), EVERYAUTH_RATE_LIMIT: 'abc' };
      const started = startServer({ port: 0, store: path, env, logLevel: 'silent', sandbox: false });
      await expect(started).rejects.toBeInstanceOf(ConfigurationError);
      await expect(started).rejects.toThrow('EVERYAUTH_RATE_LIMIT="abc" is not valid');
      expect(existsSync(path)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
