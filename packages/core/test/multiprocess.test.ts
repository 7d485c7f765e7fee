import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { LOCAL_CLIENT, authorizeUser, startTestBroker, type TestBroker } from './support/broker.js';

const WORKER = fileURLToPath(new URL('./support/refresh-worker.ts', import.meta.url));

let server: AuthServer;
let t: TestBroker;

beforeAll(async () => {
  server = await startAuthServer({
    clients: [LOCAL_CLIENT],
    accessTokenTtl: 60,
    rotateRefreshTokens: true,
  });
  t = await startTestBroker(server, { refresh: { marginMs: 500 } });
});
afterAll(async () => {
  await t?.close();
  await server?.close();
});

interface Worker {
  child: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  result: Promise<{ tokens: (string | undefined)[]; errors: string[] }>;
}

function startWorker(userId: string, env: Record<string, string> = {}): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@everyauth/source', WORKER], {
    env: { ...process.env, DB_PATH: t.dbPath, KEY_RING: JSON.stringify(t.ring), USER_ID: userId, ...env },
  });
  let out = '';
  let err = '';
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (d) => {
    out += d;
    if (out.includes('ready\n')) markReady();
  });
  child.stderr.on('data', (d) => (err += d));
  const result = new Promise<{ tokens: (string | undefined)[]; errors: string[] }>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('{"tokens"'));
      if (line) resolve(JSON.parse(line));
      else reject(new Error(`worker exited (${code ?? signal}) without a result: ${err}`));
    });
  });
  return { child, ready, result };
}

async function expire(userId: string) {
  const summary = await t.broker.findIdentity('local', userId);
  await t.broker.store.db
    .updateTable('identities')
    .set({ expires_at: Date.now() - 1000 })
    .where('id', '=', summary!.id)
    .execute();
}

async function waitFor(check: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('refresh across processes on one SQLite file', () => {
  it('4 processes × 50 callers on an expired token: one token request, one new token for all', async () => {
    await authorizeUser(t.broker, server, 'pat');
    await expire('pat');
    const workers = Array.from({ length: 4 }, () => startWorker('pat', { CALLS: '50' }));
    await Promise.all(workers.map((w) => w.ready));
    server.resetCounters();
    for (const w of workers) w.child.stdin.write('go\n');
    const results = await Promise.all(workers.map((w) => w.result));

    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const tokens = results.flatMap((r) => r.tokens);
    expect(tokens).toHaveLength(200);
    expect(new Set(tokens).size).toBe(1);
    expect(server.tokenRequests.total).toBe(1);
    expect((await server.userinfo(tokens[0]!)).status).toBe(200);
    expect((await t.broker.getIdentity('local', 'pat'))!.accessToken).toBe(tokens[0]);
  });

  it('a holder killed mid-refresh: the next caller sees its process is gone and refreshes at once, not after the 30 s lease', async () => {
    await authorizeUser(t.broker, server, 'kim');
    await expire('kim');
    server.resetCounters();
    // Hold the first token request at the provider long enough to kill the process that sent it.
    server.failNextTokenRequests(1, { delayMs: 15_000 });
    const holder = startWorker('kim');
    await holder.ready;
    holder.child.stdin.write('go\n');
    await waitFor(() => server.tokenRequests.total === 1);
    const summary = await t.broker.findIdentity('local', 'kim');
    const held = (await t.broker.store.getIdentity(summary!.id))!;
    expect(held.lease_owner).not.toBeNull();
    expect(held.lease_until! - Date.now()).toBeGreaterThan(20_000); // the default 30 s lease, far from over
    holder.child.kill('SIGKILL');
    await holder.result.catch(() => undefined);

    const next = startWorker('kim');
    await next.ready;
    const started = Date.now();
    next.child.stdin.write('go\n');
    const { tokens, errors } = await next.result;
    expect(errors).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.tokenRequests.total).toBe(2);
    expect((await server.userinfo(tokens[0]!)).status).toBe(200);
    const row = await t.broker.store.getIdentity(summary!.id);
    expect(row!.lease_owner).toBeNull();
    expect(row!.status).toBe('active');
  });
});
