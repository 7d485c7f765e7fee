import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { launchChromium } from '../../core/test/support/browser.js';
import { startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;
let browser: Browser;

beforeAll(async () => {
  as = await startAuthServer();
  [t, browser] = await Promise.all([startTestServer(as), launchChromium()]);
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
  await as?.close();
});

describe('the API reference', () => {
  it('serves the OpenAPI document without an API key: it holds routes and schemas, no secret', async () => {
    const r = await t.request('/v1/openapi.json', { key: null });
    expect(r.status).toBe(200);
    const text = await r.text();
    const doc = JSON.parse(text) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.paths['/v1/services/{serviceId}/token']).toBeDefined();
    // The documentation routes themselves are not part of the API they document.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/docs') || p === '/v1/openapi.json')).toEqual([]);
    for (const secret of [t.adminKey, t.readerKey, t.clientId]) expect(text).not.toContain(secret);
  });

  it('renders the reference at /docs, without a key, from that document', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${t.url}/docs`);
    expect(response?.status()).toBe(200);
    await page.getByText('/v1/services/{serviceId}/token').first().waitFor({ timeout: 15_000 });
    expect(await page.title()).toMatch(/Swagger UI/i);
    await page.close();
  });

  it('is linked from the console', async () => {
    const html = await (await t.request('/console/', { key: null })).text();
    expect(html).toMatch(/<a class="docs-link" href="..\/docs"/);
    expect(new URL('../docs', `${t.url}/console/`).pathname).toBe('/docs');
  });
});
