/**
 * getIdentity on a valid token (embedded, SQLite, 10,000 identities) against a baseline that reads
 * the same row with a prepared statement and decrypts it directly. Both run in this process, in
 * alternating rounds, so machine noise hits both alike. Prints both throughputs and `ratio: X`.
 * The baseline selects the whole row (`SELECT *`), as an application reading the table would; a
 * second baseline selects only the columns getIdentity reads (TOKEN_COLUMNS), to show what the
 * broker's own work costs on top of the same SQL (`ratio, same columns: X`).
 *
 * Each round runs twice: reads back to back, all in one event-loop turn (a loop of awaits that
 * never waits for I/O), and one read per turn (each read waits for `setImmediate`), as requests
 * arriving apart would. On SQLite, getIdentity's reads of one turn share a read transaction
 * (store/turn-snapshot.ts), which a read with the baseline's own statement does not: the second
 * regime's ratios (`… one read per turn`) show the broker's work without that.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { LocalBroker, TOKEN_COLUMNS, Vault, createKeyRing, openSqliteStore } from '@everyauth/core';
import { seedTokenBench } from './seed.js';
import { median } from './median.js';

const IDENTITIES = Number(process.env.BENCH_IDENTITIES ?? 10_000);
const READS_PER_ROUND = Number(process.env.BENCH_READS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const dir = mkdtempSync(join(tmpdir(), 'everyauth-bench-'));
const path = join(dir, 'everyauth.db');
try {
  const vault = Vault.fromKeyRing(createKeyRing());
  const store = await openSqliteStore({ path });
  const broker = new LocalBroker({ store, vault, baseUrl: 'http://localhost:3000' });
  await seedTokenBench(broker, store, vault, IDENTITIES);

  // Steady state: the inserts checkpointed out of the WAL, as SQLite's auto-checkpoint does over time.
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(store.db);

  // The baseline: its own connection, one prepared statement, decrypt, parse.
  const raw = new BetterSqlite3(path, { readonly: true });
  const select = raw.prepare('SELECT * FROM identities WHERE service_id = ? AND user_id = ?');
  const selectColumns = raw.prepare(`SELECT ${TOKEN_COLUMNS.join(', ')} FROM identities WHERE service_id = ? AND user_id = ?`);
  const opened = (row: { id: string; tokens: string }) => JSON.parse(vault.open(row.tokens, `identity:${row.id}`)).a as string;
  const baseline = async (userId: string) => opened(select.get('github', userId) as { id: string; tokens: string });
  const sameColumns = async (userId: string) => opened(selectColumns.get('github', userId) as { id: string; tokens: string });
  const viaBroker = async (userId: string) => (await broker.getIdentity('github', userId))!.accessToken;

  const users = Array.from({ length: READS_PER_ROUND }, () => `user-${Math.floor(Math.random() * IDENTITIES)}`);
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
  const measure = async (read: (u: string) => Promise<unknown>, perTurn = false) => {
    const start = process.hrtime.bigint();
    if (perTurn)
      for (const u of users) {
        await read(u);
        await nextTurn();
      }
    else for (const u of users) await read(u);
    return READS_PER_ROUND / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  const paths = { baseline, sameColumns, broker: viaBroker };

  // Warm up every path (JIT, page cache), then alternate rounds.
  for (const read of Object.values(paths)) await measure(read);
  console.log(`identities: ${IDENTITIES}, reads per round: ${READS_PER_ROUND}, rounds: ${ROUNDS} (medians)`);
  for (const perTurn of [false, true]) {
    const results = { baseline: [] as number[], sameColumns: [] as number[], broker: [] as number[] };
    for (let r = 0; r < ROUNDS; r++)
      for (const [name, read] of Object.entries(paths)) results[name as keyof typeof paths].push(await measure(read, perTurn));
    const b = median(results.baseline);
    const c = median(results.sameColumns);
    const g = median(results.broker);
    const regime = perTurn ? ', one read per turn' : '';
    console.log(`\n${perTurn ? 'one read per event-loop turn' : 'reads back to back, in one event-loop turn'}`);
    console.log(`baseline (prepared SELECT + decrypt): ${Math.round(b)} reads/s`);
    console.log(`baseline, getIdentity's columns only: ${Math.round(c)} reads/s`);
    console.log(`getIdentity (LocalBroker, SQLite):    ${Math.round(g)} reads/s`);
    console.log(`ratio${regime}: ${(g / b).toFixed(2)}`);
    console.log(`ratio, same columns${regime}: ${(g / c).toFixed(2)}`);
  }
  raw.close();
  await broker.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
