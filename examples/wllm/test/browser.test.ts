import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import everyauth from '@everyauth/express';
import { launchChromium, screenshot } from '../../../packages/core/test/support/browser.js';
import { startDemo, type Demo } from '../../stand-ins/demo.js';
import { DEMO_TASKS } from '../../stand-ins/index.js';
// @ts-expect-error: the example is plain JavaScript, as users would copy it.
import { createApp } from '../app.js';

// @ts-expect-error: plain JavaScript, shared with the demo scripts.
import { SERVICES } from '../demo-services.js';

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(() => browser?.close());

/**
 * Both modes: `embedded` (the app reads tokens and gives them to the SDKs) and `proxy` (an EveryAuth
 * server; the SDKs call the stand-ins through its /v1/proxy with an API key, never seeing a token).
 */
describe.each(['embedded', 'proxy'] as const)('Work Less Live More in Chromium, against the stand-ins (%s)', (mode) => {
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo({
      mode,
      services: SERVICES,
      host: '127.0.0.1',
      port: 0,
      createApp: (urls) => createApp({ ...urls, sessionSecret: 'test-secret' }),
    });
  });
  afterAll(() => demo?.close());

  it('a new user signs in, consents at Asana and Google, sees their tasks, and puts one on the calendar; returning needs no sign-in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${demo.url}/`);
    expect(await page.locator('.card-title').innerText()).toContain('Asana Tasks + Google Calendar');
    await screenshot(page, `wllm-${mode}`, '01-home');

    await page.click('#sign-in');
    await page.waitForURL(`${demo.standIns.asana.url}/**`);
    expect(await page.locator('h1').innerText()).toBe('Sign in to Asana');
    await page.fill('input[name=login_email]', 'pat@example.com');
    await page.fill('input[name=login_name]', 'Pat Example');
    await screenshot(page, `wllm-${mode}`, '02-asana-consent');
    // The stand-in answers the authorization request with a redirect to its sign-in page.
    const googleAuthorization = page.waitForRequest((request) => request.url().startsWith(`${demo.standIns.google.url}/o/oauth2/v2/auth?`));
    await page.click('#allow');

    // The tutorial's ensureSession sends the user straight on to the service still missing.
    await page.waitForURL(`${demo.standIns.google.url}/**`);
    expect(await page.locator('h1').innerText()).toBe('Sign in to Google');
    const consent = new URL((await googleAuthorization).url());
    expect(consent.searchParams.get('access_type')).toBe('offline');
    expect(consent.searchParams.get('prompt')).toBe('consent');
    await page.fill('input[name=login_email]', 'pat@example.com');
    await screenshot(page, `wllm-${mode}`, '03-google-consent');
    await page.click('#allow');

    await page.waitForURL(`${demo.url}/tasks**`);
    const names = await page.locator('.task-name').allInnerTexts();
    expect(names).toEqual(DEMO_TASKS.map((t) => t.name));
    expect(await page.locator('#tasks').innerText()).toContain(DEMO_TASKS[0]!.notes);
    expect(await page.locator('#tasks').innerText()).toContain(DEMO_TASKS[0]!.due_on!);
    await screenshot(page, `wllm-${mode}`, '04-tasks');

    await page.locator('button.task').first().click();
    await page.waitForURL(`${demo.url}/tasks?added=**`);
    expect(await page.locator('#added').innerText()).toContain(DEMO_TASKS[0]!.name);
    expect(await page.locator('#events').innerText()).toContain(DEMO_TASKS[0]!.name);
    await screenshot(page, `wllm-${mode}`, '05-added-to-calendar');

    const calendar = demo.standIns.google.calendars.get('pat@example.com') ?? [];
    expect(calendar).toHaveLength(1);
    expect(calendar[0]).toMatchObject({ summary: DEMO_TASKS[0]!.name, start: { date: DEMO_TASKS[0]!.due_on } });
    // EveryAuth kept a refresh token for Google, which it only gets with access_type=offline and prompt=consent.
    expect(demo.standIns.google.oauth.countRefreshTokens()).toBe(1);
    if (mode === 'proxy') {
      // The SDKs' calls went through the proxy, which put the stand-ins' own tokens on them (they refuse anything else).
      const metrics = await (await fetch(`${demo.everyauthUrl}/metrics`)).text();
      for (const service of ['asana', 'google']) {
        expect(metrics).toMatch(new RegExp(`everyauth_proxy_requests_total\\{service="${service}",class="2xx"\\} [1-9]`));
      }
      expect(metrics).not.toMatch(/everyauth_proxy_requests_total\{[^}]*class="[45]xx"/);
    }
    await page.close();

    // Later, in the same browser: straight to the tasks, no provider page on the way.
    const later = await context.newPage();
    const visited: string[] = [];
    later.on('request', (request) => void visited.push(request.url()));
    await later.goto(`${demo.url}/`);
    await later.waitForURL(`${demo.url}/tasks`);
    expect(await later.locator('.task-name').count()).toBe(DEMO_TASKS.length);
    expect(visited.filter((u) => u.startsWith(demo.standIns.asana.url) || u.startsWith(demo.standIns.google.url))).toEqual([]);
    await screenshot(later, `wllm-${mode}`, '06-returning-user');
    await context.close();
  });

  it('a refused consent lands on a readable error page, and nothing is stored', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${demo.url}/`);
    await page.click('#sign-in');
    await page.waitForURL(`${demo.standIns.asana.url}/**`);
    await page.fill('input[name=login_email]', 'sam@example.com');
    await page.click('#deny');
    await page.waitForURL(`${demo.url}/tasks?**`);
    expect(await page.locator('#error .card-title').innerText()).toBe('Authorization failed');
    expect(await page.locator('#error-code').innerText()).toBe('access_denied');
    expect(await page.locator('#error-description').innerText()).toMatch(/denied/);
    await screenshot(page, `wllm-${mode}`, '07-refused-consent');
    const broker = await everyauth.broker();
    expect((await broker.listIdentities('asana', {})).items.map((i) => i.profile.email)).not.toContain('sam@example.com');
    await context.close();
  });

  it('refuses a finishedUrl on another origin: the browser never leaves the app', async () => {
    const other = express();
    other.use(
      '/asana/authorize/:userId',
      everyauth.authorize('asana', { finishedUrl: 'https://evil.example/steal', mapToUserId: (req) => req.params.userId }),
    );
    const server = await new Promise<import('node:http').Server>((resolve) => {
      const s = other.listen(0, '127.0.0.1', () => resolve(s));
    });
    const origin = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const response = await page.goto(`${origin}/asana/authorize/victim`);
      expect(response?.status()).toBe(400);
      expect(new URL(page.url()).origin).toBe(origin);
      expect(await page.locator('body').innerText()).toMatch(/finishedUrl origin https:\/\/evil\.example is not allowed/);
      await screenshot(page, `wllm-${mode}`, '08-foreign-finished-url-refused');
    } finally {
      await context.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
