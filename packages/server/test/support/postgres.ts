/**
 * A PostgreSQL instance of a test's own (initdb + pg_ctl from /usr/lib/postgresql/15/bin, a temp
 * dir, a free port), so a test can stop and restart it without touching the machine's cluster,
 * which other test files use in parallel. As root, the server runs as the `postgres` user.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './server.js';

const run = promisify(execFile);
const BIN = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'].find((d) =>
  existsSync(join(d, 'pg_ctl')),
);

export interface PostgresInstance {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server for good and removes its files. */
  destroy(): Promise<void>;
}

export async function startPostgres(): Promise<PostgresInstance> {
  if (!BIN) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-pg-'));
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number((await run('id', ['-u', 'postgres'])).stdout.trim()) : undefined;
  const gid = asRoot ? Number((await run('id', ['-g', 'postgres'])).stdout.trim()) : undefined;
  if (asRoot) chownSync(dir, uid!, gid!);
  const data = join(dir, 'data');
  const exec = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(BIN, tool), ...args]) : run(join(BIN, tool), args);
  await exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = async () => void (await exec('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']));
  const stop = async () => void (await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']));
  await start();
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    async destroy() {
      if (stopped) return;
      stopped = true;
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
