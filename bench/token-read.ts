/**
 * getIdentity on a valid token (embedded, SQLite, 10,000 identities) against a baseline that reads
 * the same row with a prepared statement and decrypts it directly. Both run in this process, in
 * alternating rounds, so machine noise hits both alike. Prints both throughputs and `ratio: X`.
 * The baseline selects the whole row (`SELECT *`), as an application reading the table would; a
 * second baseline selects only the columns getIdentity reads (TOKEN_COLUMNS), to show what the
 * broker's own work costs on top of the same SQL (`ratio, same columns: X`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { LocalBroker, TOKEN_COLUMNS, Vault, createKeyRing, openSqliteStore } from '@everyauth/core';
import { seedTokenBench } from './seed.js';

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
  const measure = async (read: (u: string) => Promise<string>) => {
    const start = process.hrtime.bigint();
    for (const u of users) await read(u);
    return READS_PER_ROUND / (Number(process.hrtime.bigint() - start) / 1e9);
  };

  // Warm up both paths (JIT, page cache), then alternate rounds.
  await measure(baseline);
  await measure(sameColumns);
  await measure(viaBroker);
  const results = { baseline: [] as number[], sameColumns: [] as number[], broker: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    results.baseline.push(await measure(baseline));
    results.sameColumns.push(await measure(sameColumns));
    results.broker.push(await measure(viaBroker));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const b = median(results.baseline);
  const c = median(results.sameColumns);
  const g = median(results.broker);
  console.log(`identities: ${IDENTITIES}, reads per round: ${READS_PER_ROUND}, rounds: ${ROUNDS} (medians)`);
  console.log(`baseline (prepared SELECT + decrypt): ${Math.round(b)} reads/s`);
  console.log(`baseline, getIdentity's columns only: ${Math.round(c)} reads/s`);
  console.log(`getIdentity (LocalBroker, SQLite):    ${Math.round(g)} reads/s`);
  console.log(`ratio: ${(g / b).toFixed(2)}`);
  console.log(`ratio, same columns: ${(g / c).toFixed(2)}`);
  raw.close();
  await broker.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
