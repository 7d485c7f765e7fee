/**
 * Debian's Chromium driven by playwright-core, and where the browser tests leave their screenshots:
 * the one launch every browser test uses, the packages' and the examples' (never a downloaded browser).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** `artifacts/screenshots/` at the repository's root. */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../../../artifacts/screenshots/', import.meta.url));

/**
 * Starts headless Chromium (`CHROMIUM_PATH`, else /usr/bin/chromium) without the sandbox, which
 * needs privileges a container lacks, and without the background traffic (updates, sync, QUIC)
 * that has no place in a test on a machine with no internet.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}

/** Saves a full-page screenshot as artifacts/screenshots/<prefix>-<name>.png and returns its path. */
export async function screenshot(page: Page, prefix: string, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${prefix}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
