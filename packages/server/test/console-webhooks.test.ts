/**
 * The console's Webhooks view in headless Chromium (issue 15): a failed delivery shows as failed
 * and "Send again" delivers it, with the same delivery id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { launchChromium } from '../../core/test/support/browser.js';
import { receiver, waitFor, type Receiver } from './support/receiver.js';
import { hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;
let browser: Browser;
let hook: Receiver;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  [t, browser] = await Promise.all([
    startTestServer(as, { server: { webhooks: { pollMs: 50, baseDelayMs: 20, maxAttempts: 1 } } }),
    launchChromium(),
  ]);
  hook = await receiver([500]);
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
  await hook?.close();
  await as?.close();
});

describe('console webhooks view', () => {
  it('shows a failed delivery and sends it again', async () => {
    const created = await t.request('/v1/webhooks', { method: 'POST', json: { url: hook.url, events: ['identity.created'] } });
    const { id } = (await created.json()) as { id: string };
    await hostedFlow(t, as, { userId: 'hooked' });
    const [failed] = await waitFor(async () => {
      const list = (await (await t.request(`/v1/webhooks/${id}/deliveries`)).json()) as { id: string; status: string }[];
      return list[0]?.status === 'failed' && list;
    });

    const page = await (await browser.newContext()).newPage();
    await page.goto(`${t.url}/console/`);
    await page.fill('#api-key', t.adminKey);
    await page.click('#sign-in');
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('a[data-route="webhooks"]');
    await page.waitForSelector(`tr[data-delivery="${failed!.id}"][data-status="failed"]`);
    await page.click(`tr[data-delivery="${failed!.id}"] [data-action="replay"]`);
    await page.waitForSelector('#toast div');
    await waitFor(async () => hook.received.length === 2);
    await page.reload();
    await page.waitForSelector(`tr[data-delivery="${failed!.id}"][data-status="delivered"]`);
    expect(hook.received.map((r) => JSON.parse(r.body).deliveryId)).toEqual([failed!.id, failed!.id]);
    await page.context().close();
  });
});
