/**
 * Demo mode of the examples: the stand-ins, a fresh EveryAuth (SQLite and a new master key in a
 * temporary folder) pointed at them, and the example app, all in one process. Embedded by default;
 * in `proxy` mode EveryAuth runs as a server the app reaches over HTTP, and the app's API clients
 * call the stand-ins through its `/v1/proxy/...` with an API key, so the app never holds a token.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { RemoteBroker, createKeyRing, openStore, writeKeyRing } from '@everyauth/core';
import everyauth from '@everyauth/express';
import { createApiKey, startServer, type RunningServer } from '@everyauth/server';
import { connectStandIns, startStandIns, type StandInService, type StandIns } from './index.js';

export interface DemoApp {
  listen(port: number, host: string, callback: () => void): Server;
}

export interface DemoOptions {
  services: StandInService[];
  /** Builds the example app once the URLs are known; in proxy mode, `proxyApiKey` is what its API clients send. */
  createApp(urls: { asanaApiUrl: string; googleRootUrl: string; asanaUrl: string; proxyApiKey?: string }): DemoApp;
  /** `embedded` (default): EveryAuth in the app's process; `proxy`: an EveryAuth server, the APIs called through /v1/proxy. */
  mode?: 'embedded' | 'proxy';
  /** Port of the app; 0 picks a free one. */
  port?: number;
  /** Host the app is reached at; `localhost` for people, 127.0.0.1 for tests. */
  host?: string;
  ports?: { asana?: number; google?: number };
}

export interface Demo {
  url: string;
  /** Proxy mode: the EveryAuth server's URL. */
  everyauthUrl?: string;
  standIns: StandIns;
  close(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  if (options.mode === 'proxy') return startProxyDemo(options);
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

/**
 * Proxy mode. The app's port comes first (the server must allow it as a finishedUrl origin), then
 * the server, then the app built with the server's proxy URLs. The stand-ins' APIs are declared as
 * the services' API base URLs by host name (`localhost`): the proxy sends no credential to an IP address.
 */
async function startProxyDemo(options: DemoOptions): Promise<Demo> {
  const standIns = await startStandIns(options.ports);
  const dir = await mkdtemp(join(tmpdir(), 'everyauth-demo-'));
  const host = options.host ?? 'localhost';
  const http = createServer();
  await new Promise<void>((resolve, reject) => {
    http.listen(options.port ?? 0, host === 'localhost' ? '127.0.0.1' : host, () => resolve());
    http.on('error', reject);
  });
  const url = `http://${host}:${(http.address() as AddressInfo).port}`;
  const keyFile = join(dir, 'master.key');
  const store = join(dir, 'everyauth.db');
  await writeKeyRing(keyFile, createKeyRing());
  let server: RunningServer | undefined;
  try {
    server = await startServer({
      port: 0,
      host: '127.0.0.1',
      store,
      keyFile,
      sandbox: false,
      logLevel: 'warn',
      env: { EVERYAUTH_ALLOWED_ORIGINS: url, EVERYAUTH_RATE_LIMIT: '0' },
      server: { backgroundRefresh: false, console: false },
    });
    const keys = await openStore(store);
    const [admin, app, proxy] = await Promise.all(
      (['admin', 'tokens:read', 'proxy'] as const).map((scope) => createApiKey(keys, { name: `demo ${scope}`, scopes: [scope] })),
    );
    await keys.close();
    const adminBroker = new RemoteBroker({ server: server.url, apiKey: admin!.key });
    await connectStandIns(adminBroker, standIns, options.services);
    const apiBase = { asana: `${byName(standIns.asana.url)}/api/1.0`, google: byName(standIns.google.url) };
    for (const service of options.services) await adminBroker.putService({ id: service.id, apiBaseUrls: [apiBase[service.provider]] });
    everyauth.config({ broker: new RemoteBroker({ server: server.url, apiKey: app!.key }), baseUrl: url });
    const handler = options.createApp({
      asanaApiUrl: `${server.url}/v1/proxy/asana`,
      googleRootUrl: `${server.url}/v1/proxy/google/`,
      asanaUrl: standIns.asana.url,
      proxyApiKey: proxy!.key,
    }) as unknown as RequestListener;
    http.on('request', handler);
  } catch (err) {
    http.close();
    await server?.close();
    await standIns.close();
    throw err;
  }
  const running = server;
  return {
    url,
    everyauthUrl: running.url,
    standIns,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await everyauth.close();
      await running.close();
      await standIns.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The same URL with the host named rather than numbered. */
const byName = (url: string) => url.replace('//127.0.0.1:', '//localhost:');

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
