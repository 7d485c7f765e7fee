/**
 * ApiKeyVerifier: a cached row lets in the key it was made for, and only that key, whether the key
 * is checked by its hash or against the key the row let in last.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { openStore, type Store } from '@everyauth/core';
import { ApiKeyVerifier, createApiKey, deleteApiKey } from '../src/api-keys.js';

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'everyauth-api-keys-'));
  store = await openStore(join(dir, 'everyauth.db'));
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => vi.useRealTimers());

/** The same key id with another secret of the right form. */
const forged = (key: string) => key.slice(0, -43) + (key.endsWith('A') ? 'B' : 'A').repeat(43);

it('lets the key in from its row, then from the cache, with the same id and scopes', async () => {
  const { id, key } = await createApiKey(store, { name: 'reader', scopes: ['tokens:read'] });
  const verifier = new ApiKeyVerifier(store);
  const first = verifier.verify(key);
  expect(first).toBeInstanceOf(Promise); // the row is read once
  expect(await first).toEqual({ id, scopes: ['tokens:read'] });
  const again = verifier.verify(key);
  expect(again).not.toBeInstanceOf(Promise); // then checked from the cache, synchronously
  expect(again).toEqual({ id, scopes: ['tokens:read'] });
});

it('refuses another secret under the same id, before and after the right key was let in', async () => {
  const { id, key } = await createApiKey(store, { name: 'admin', scopes: ['admin'] });
  const verifier = new ApiKeyVerifier(store);
  expect(await verifier.verify(forged(key))).toBeUndefined(); // checked by its hash, against the row just read
  expect(verifier.verify(key)).toEqual({ id, scopes: ['admin'] });
  expect(verifier.verify(forged(key))).toBeUndefined(); // not the key the row let in last, nor its hash
  expect(verifier.verify(key)).toEqual({ id, scopes: ['admin'] });
});

it('stops letting a deleted key in once its row is forgotten', async () => {
  const { id, key } = await createApiKey(store, { name: 'gone', scopes: ['connect'] });
  const verifier = new ApiKeyVerifier(store);
  expect(await verifier.verify(key)).toEqual({ id, scopes: ['connect'] });
  expect(await deleteApiKey(store, id)).toBe(true);
  verifier.forget(id);
  expect(await verifier.verify(key)).toBeUndefined();
});

it('stops letting a key deleted elsewhere in after cacheMs, even with the wall clock set back', async () => {
  vi.useFakeTimers({ toFake: ['performance', 'Date'] });
  const { id, key } = await createApiKey(store, { name: 'revoked', scopes: ['admin'] });
  const verifier = new ApiKeyVerifier(store, 5_000);
  expect(await verifier.verify(key)).toEqual({ id, scopes: ['admin'] });
  expect(await deleteApiKey(store, id)).toBe(true); // through another replica: this one is not told
  vi.setSystemTime(Date.now() - 3_600_000);
  vi.advanceTimersByTime(4_999);
  expect(verifier.verify(key)).toEqual({ id, scopes: ['admin'] }); // still cached
  vi.advanceTimersByTime(1);
  expect(await verifier.verify(key)).toBeUndefined();
});
