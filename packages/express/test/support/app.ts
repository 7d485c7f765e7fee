import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts anything with Node's `listen` on a free 127.0.0.1 port; returns its origin and a closer. */
export async function listen(app: {
  listen: (port: number, host: string, cb: () => void) => Server;
}): Promise<{ origin: string; port: number; close(): Promise<void> }> {
  let server!: Server;
  await new Promise<void>((resolve) => {
    server = app.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A browser as far as cookies and redirects go: keeps cookies per origin (name=value only, enough
 * for tests that check attributes separately) and does not follow redirects, so each hop is seen.
 */
export class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>();

  async get(url: string | URL): Promise<Response> {
    const target = new URL(url);
    const jar = this.jars.get(target.origin) ?? new Map<string, string>();
    this.jars.set(target.origin, jar);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(target, { redirect: 'manual', headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(10_000) });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    return response;
  }

  cookies(origin: string): Map<string, string> {
    return this.jars.get(origin) ?? new Map();
  }
}

export function location(response: Response, base: string): URL {
  const value = response.headers.get('location');
  if (!value) throw new Error(`expected a redirect, got HTTP ${response.status}`);
  return new URL(value, base);
}
