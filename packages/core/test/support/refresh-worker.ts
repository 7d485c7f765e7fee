/**
 * A separate process that shares a SQLite store: prints "ready", waits for "go" on stdin, then
 * asks for one identity's token CALLS times at once and prints the tokens it got as JSON.
 */
import { createInterface } from 'node:readline';
import { LocalBroker, Vault, openSqliteStore } from '@everyauth/core';
import { TEST_BASE_URL } from './broker.js';

const env = process.env;
const store = await openSqliteStore({ path: env.DB_PATH! });
const broker = new LocalBroker({
  store,
  vault: Vault.fromKeyRing(JSON.parse(env.KEY_RING!)),
  baseUrl: TEST_BASE_URL,
  refresh: { marginMs: 500, leaseMs: Number(env.LEASE_MS ?? 30_000) },
});
const calls = Number(env.CALLS ?? 1);

console.log('ready');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() !== 'go') continue;
  const results = await Promise.allSettled(Array.from({ length: calls }, () => broker.getIdentity(env.SERVICE ?? 'local', env.USER_ID!)));
  console.log(
    JSON.stringify({
      tokens: results.map((r) => (r.status === 'fulfilled' ? r.value?.accessToken : undefined)),
      errors: results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.message ?? r.reason)] : [])),
    }),
  );
  break;
}
lines.close();
await broker.close();
