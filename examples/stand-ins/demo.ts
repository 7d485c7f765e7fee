/**
 * Demo mode of the examples: the stand-ins, a fresh embedded EveryAuth (SQLite and a new master key
 * in a temporary folder) pointed at them, and the example app, all in one process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createKeyRing, writeKeyRing } from '@everyauth/core';
import everyauth from '@everyauth/express';
import { connectStandIns, startStandIns, type StandInService, type StandIns } from './index.js';

export interface DemoApp {
  listen(port: number, host: string, callback: () => void): Server;
}

export interface DemoOptions {
  services: StandInService[];
  /** Builds the example app once the stand-ins' URLs are known. */
  createApp(urls: { asanaApiUrl: string; googleRootUrl: string; asanaUrl: string }): DemoApp;
  /** Port of the app; 0 picks a free one. */
  port?: number;
  /** Host the app is reached at; `localhost` for people, 127.0.0.1 for tests. */
  host?: string;
  ports?: { asana?: number; google?: number };
}

export interface Demo {
  url: string;
  standIns: StandIns;
  close(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const standIns = await startStandIns(options.ports);
  const dir = await mkdtemp(join(tmpdir(), 'everyauth-demo-'));
  const app = options.createApp({
    asanaApiUrl: `${standIns.asana.url}/api/1.0`,
    googleRootUrl: `${standIns.google.url}/`,
    asanaUrl: standIns.asana.url,
  });
  const host = options.host ?? 'localhost';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port ?? 0, host === 'localhost' ? '127.0.0.1' : host, () => resolve(s));
    s.on('error', reject);
  });
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;
  const keyFile = join(dir, 'master.key');
  await writeKeyRing(keyFile, createKeyRing());
  everyauth.config({ store: join(dir, 'everyauth.db'), keyFile, baseUrl: url });
  await connectStandIns(await everyauth.broker(), standIns, options.services);

  return {
    url,
    standIns,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await everyauth.close();
      await standIns.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a demo until Ctrl-C, printing where to go. */
export async function runDemo(options: DemoOptions & { name: string }): Promise<void> {
  const demo = await startDemo({ port: Number(process.env.PORT ?? 3000), ...options });
  console.log(
    `${options.name} is running against local stand-ins for Asana (${demo.standIns.asana.url}) and Google (${demo.standIns.google.url}).`,
  );
  console.log(`Open ${demo.url}/ in a browser. Ctrl-C stops it.`);
  const stop = () => {
    demo.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
