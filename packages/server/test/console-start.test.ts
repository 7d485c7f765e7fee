/**
 * From the start command to a sandbox identity refreshed and revoked, all through the console:
 * the real `everyauth serve` (from source) in a fresh folder sets itself up and prints an admin key
 * once, then headless Chromium signs in with that key and does the rest on the pages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium, screenshot } from '../../core/test/support/browser.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = [
  `--import=${join(ROOT, 'node_modules/tsx/dist/esm/index.mjs')}`,
  '--conditions=@everyauth/source',
  join(ROOT, 'packages/cli/src/bin.ts'),
];

let dir: string;
let serve: ChildProcess | undefined;
let browser: Browser | undefined;

/** Environment without anything that would point the CLI at another store, key or server. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('EVERYAUTH_')) delete env[name];
  return env;
}

/** Starts `everyauth serve` and resolves with the URL and the first-run admin key it prints. */
function startServe(): Promise<{ url: string; key: string }> {
  serve = spawn(process.execPath, [...CLI, 'serve', '--port', '0', '--log-level', 'warn'], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`everyauth serve did not start within 30 s:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      const key = /Admin API key[^:]*: (ea_[a-z0-9]{16}_[A-Za-z0-9_-]{43})/.exec(output)?.[1];
      if (url && key) {
        clearTimeout(timer);
        resolve({ url, key });
      }
    };
    serve!.stdout!.on('data', read);
    serve!.stderr!.on('data', read);
    serve!.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`everyauth serve exited with ${code}:\n${output}`));
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'everyauth-start-'));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (serve && serve.exitCode === null) {
    const exited = new Promise((resolve) => serve!.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

it('everyauth serve in a fresh folder → sign in with the printed key, connect the sandbox, refresh and revoke in the console', async () => {
  const { url, key } = await startServe();
  expect(existsSync(join(dir, '.everyauth', 'master.key'))).toBe(true);

  const context = await browser!.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (msg) => void (msg.type() === 'error' && errors.push(msg.text())));
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('dialog', (dialog) => void dialog.accept());

  // The server's root leads to the console.
  await page.goto(url);
  await page.waitForSelector('#sign-in-form');
  expect(page.url()).toBe(`${url}/console/`);
  await page.fill('#api-key', key!);
  await page.click('#sign-in');
  await page.waitForSelector('#no-identities');

  // The sandbox service is there with no configuration; connect a user through its pages.
  await page.click('a[data-route="connect"]');
  await page.waitForSelector('#connect-form');
  expect(await page.inputValue('#connect-service')).toBe('sandbox');
  await page.fill('#connect-user', 'first-user');
  await page.click('#connect');
  await page.waitForSelector('#login');
  await page.fill('#login', 'newcomer');
  await page.click('#sign-in');
  await page.click('#allow');
  await page.waitForSelector('#flow-result .message.ok');

  await page.click('a[data-route="identities"]');
  const row = page.locator('tr[data-user="first-user"]');
  await row.waitFor();
  expect(await row.locator('[data-status]').textContent()).toBe('active');
  await row.locator('[data-action="refresh"]').click();
  await page.waitForFunction(() => document.querySelector('tr[data-user="first-user"] [data-ago]')?.textContent === 'just now');
  await shot('start-refreshed');

  await row.locator('[data-action="revoke"]').click();
  await page.waitForSelector('#no-identities');
  await page.click('a[data-route="events"]');
  await page.waitForSelector('#events tr[data-event="identity.deleted"]');
  expect(await page.locator('#events tr[data-event="identity.refreshed"]').count()).toBeGreaterThanOrEqual(1);
  await shot('start-events');
  expect(errors).toEqual([]);
  await context.close();

  // The sandbox keeps its grants next to the SQLite store, so a restart keeps identities refreshable.
  expect(existsSync(join(dir, '.everyauth', 'sandbox.json'))).toBe(true);

  async function shot(name: string) {
    await screenshot(page, 'console', name);
  }
});
