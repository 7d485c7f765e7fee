import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import everyauth from '@everyauth/express';
import { launchChromium, screenshot } from '../../../packages/core/test/support/browser.js';
import { startDemo, type Demo } from '../../stand-ins/demo.js';
import { DEMO_TASKS } from '../../stand-ins/index.js';
// @ts-expect-error: the example is plain JavaScript, as users would copy it.
import { createApp } from '../app.js';

let demo: Demo;
let browser: Browser;
beforeAll(async () => {
  [demo, browser] = await Promise.all([
    startDemo({
      services: [{ id: 'asana', provider: 'asana', scopes: ['openid', 'email', 'profile', 'default'] }],
      host: '127.0.0.1',
      port: 0,
      createApp: ({ asanaUrl }) => createApp({ asanaUrl, sessionSecret: 'test-secret' }),
    }),
    launchChromium(),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

describe('the Asana OAuth tutorial app on EveryAuth, in Chromium', () => {
  it('greets the user from userinfo, lists their tasks, keeps no token in the browser, and /clear starts over', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // The stand-in answers the authorization request with a redirect to its sign-in page.
    const authorization = page.waitForRequest((request) => request.url().startsWith(`${demo.standIns.asana.url}/-/oauth_authorize?`));
    await page.goto(`${demo.url}/`);
    await page.waitForURL(`${demo.standIns.asana.url}/**`);
    expect(new URL((await authorization).url()).searchParams.get('scope')).toBe('openid email profile default');
    await page.fill('input[name=login_email]', 'pat@example.com');
    await page.fill('input[name=login_name]', 'Pat Example');
    await page.click('#allow');
    await page.waitForURL(`${demo.url}/?**`);
    expect(await page.locator('body').innerText()).toBe('Hello Pat Example, your email is pat@example.com and your picture is null');
    await screenshot(page, 'asana-oauth', '01-greeting');

    await page.goto(`${demo.url}/get-tasks`);
    const lines = (await page.locator('body').innerText())
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    expect(lines).toEqual(DEMO_TASKS.map((t) => `${t.name} is due`));
    await screenshot(page, 'asana-oauth', '02-tasks');

    const identity = (await everyauth.getIdentities('asana', {})).items[0]!;
    const fresh = await everyauth.getIdentity('asana', identity.id);
    expect(fresh!.native).toMatchObject({ data: { email: 'pat@example.com', name: 'Pat Example' } });
    for (const cookie of await context.cookies()) expect(cookie.value).not.toContain(fresh!.accessToken);

    await page.goto(`${demo.url}/clear`);
    expect(await page.locator('body').innerText()).toBe('authorization cleared');
    expect((await everyauth.getIdentities('asana', {})).items).toEqual([]);
    expect(demo.standIns.asana.oauth.countRefreshTokens()).toBe(0); // revoked at the provider too
    await page.goto(`${demo.url}/`);
    await page.waitForURL(`${demo.standIns.asana.url}/**`);
    await context.close();
  });
});
