/**
 * A token endpoint that misbehaves on cue, in front of the test authorization server's real one.
 * Give its URL as the provider's `refreshUrl`: the code exchange still goes straight to
 * oidc-provider, and every refresh passes through here.
 *
 *   const endpoint = await startFaultyTokenEndpoint(as.tokenEndpoint);
 *   endpoint.mode = 'hang';   // every refresh request is held, unanswered
 *   endpoint.mode = 'up';     // the held ones (whose callers still wait) go on to the provider
 *
 * - `up`: forwarded to oidc-provider, its answer returned as it is.
 * - `hang`: held until the mode changes; one whose caller hung up meanwhile is dropped, never
 *   forwarded, so no rotated refresh token is issued to nobody.
 * - `fail`: 503 with an OAuth-style JSON error (a provider outage).
 * - `drop`: the socket destroyed unanswered (a network error for the caller).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProviderMode = 'up' | 'hang' | 'fail' | 'drop';

export interface FaultyTokenEndpoint {
  /** `http://127.0.0.1:<port>/token`. */
  readonly url: string;
  /** What the next requests get; changing it releases the requests held by `hang`. */
  mode: ProviderMode;
  /** Requests that arrived, in total and by the mode they arrived in. */
  readonly requests: { total: number; byMode: Record<ProviderMode, number> };
  /** Requests held right now. */
  readonly held: number;
  resetCounts(): void;
  close(): Promise<void>;
}

export async function startFaultyTokenEndpoint(target: string): Promise<FaultyTokenEndpoint> {
  let mode: ProviderMode = 'up';
  const requests = { total: 0, byMode: { up: 0, hang: 0, fail: 0, drop: 0 } };
  let waiting: Array<() => void> = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const arrivedIn = mode;
    requests.total += 1;
    requests.byMode[arrivedIn] += 1;
    if (arrivedIn === 'hang') await new Promise<void>((resolve) => waiting.push(resolve));
    const now = arrivedIn === 'hang' ? mode : arrivedIn;
    if (now === 'drop' || res.closed || req.socket.destroyed) return void req.socket.destroy();
    if (now === 'fail') {
      return void res
        .writeHead(503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'the test provider is down' }));
    }
    if (now === 'hang') return; // changed from one hang to another: impossible, see the setter
    const answer = await fetch(target, {
      method: 'POST',
      headers: pick(req, ['content-type', 'authorization', 'accept', 'dpop']),
      body: Buffer.concat(chunks),
    });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json', 'cache-control': 'no-store' });
    res.end(Buffer.from(await answer.arrayBuffer()));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/token`,
    get mode() {
      return mode;
    },
    set mode(next: ProviderMode) {
      mode = next;
      if (next === 'hang') return;
      const release = waiting;
      waiting = [];
      for (const resolve of release) resolve();
    },
    requests,
    get held() {
      return waiting.length;
    },
    resetCounts() {
      requests.total = 0;
      for (const m of Object.keys(requests.byMode) as ProviderMode[]) requests.byMode[m] = 0;
    },
    close() {
      mode = 'drop';
      for (const resolve of waiting.splice(0)) resolve();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function pick(req: IncomingMessage, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}
