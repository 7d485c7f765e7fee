import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { KeyRing } from '@everyauth/core';
import { freePort } from './server.js';

const REPLICA = fileURLToPath(new URL('./replica.ts', import.meta.url));

export interface Replica {
  url: string;
  child: ChildProcess;
  /** Everything it wrote to stderr, for failure messages. */
  stderr(): string;
  exited: Promise<number | null>;
}

/** Spawns replicas of the server on one store; all use `baseUrl` (the first replica's when not given) as their public URL, like replicas behind one load balancer. */
export async function startReplicas(
  count: number,
  options: { storeUrl: string; ring: KeyRing; env?: Record<string, string> },
): Promise<Replica[]> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const baseUrl = options.env?.BASE_URL ?? `http://127.0.0.1:${ports[0]}`;
  return Promise.all(
    ports.map(
      (port) =>
        new Promise<Replica>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@everyauth/source', REPLICA], {
            env: {
              ...process.env,
              PORT: String(port),
              STORE_URL: options.storeUrl,
              BASE_URL: baseUrl,
              EVERYAUTH_MASTER_KEY: JSON.stringify(options.ring),
              ...options.env,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          let err = '';
          const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
          child.stderr!.on('data', (d) => (err += d));
          child.stdout!.on('data', (d) => {
            out += d;
            const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
            if (line) resolve({ url: JSON.parse(line).ready, child, stderr: () => err, exited });
          });
          void exited.then((code) => {
            reject(new Error(`replica exited (${code}) before it was ready: ${err}`));
            // A crash (not a signal we sent) would otherwise show only as refused connections.
            if (code !== 0 && code !== null) console.error(`replica on port ${port} exited with ${code}:\n${err}`);
          });
        }),
    ),
  );
}

/** SIGTERM to each, waiting for their graceful exit. */
export async function stopReplicas(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(async (r) => {
      if (r.child.exitCode !== null || r.child.signalCode !== null) return;
      r.child.kill('SIGTERM');
      const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
      await r.exited;
      clearTimeout(timer);
    }),
  );
}
