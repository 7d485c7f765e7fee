/**
 * A stand-in for a provider's API, on `localhost` (the proxy refuses IP literals): it records what
 * arrives and misbehaves on request. `/check` asks the real test authorization server's userinfo
 * endpoint whether the bearer token is good, as a resource server would (RFC 6750 §3.1: 401 when not).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bytes: number;
}

export interface Upstream {
  /** `http://localhost:<port>` */
  origin: string;
  seen: Seen[];
  /** Responses by path for the next requests: `/status?code=429&retryAfter=0` style counters live here. */
  counters: Map<string, number>;
  close(): Promise<void>;
}

export async function startUpstream(userinfoUrl?: string): Promise<Upstream> {
  const seen: Seen[] = [];
  const counters = new Map<string, number>();
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://localhost');
    if (url.pathname === '/api/hang') return; // never answers
    if (url.pathname === '/api/reset') return req.socket.destroy();
    let bytes = 0;
    for await (const chunk of req) bytes += (chunk as Buffer).length;
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes });
    const count = (counters.get(url.pathname) ?? 0) + 1;
    counters.set(url.pathname, count);
    const json = (status: number, body: unknown, headers: Record<string, string | string[]> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    switch (url.pathname) {
      case '/api/check': {
        const answer = await fetch(userinfoUrl!, { headers: { authorization: req.headers.authorization ?? '' } });
        const profile = answer.ok ? ((await answer.json()) as Record<string, unknown>) : undefined;
        return answer.ok
          ? json(200, { sub: profile!.sub, bytes })
          : json(401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      }
      case '/api/unauthorized':
        return json(401, { error: 'invalid_token' });
      case '/api/graph/check': {
        // Graph API style: a refused token is 400 with {"error":{"code":190}}, not 401.
        const answer = await fetch(userinfoUrl!, { headers: { authorization: req.headers.authorization ?? '' } });
        if (answer.ok) return json(200, { sub: ((await answer.json()) as { sub: string }).sub });
        res.writeHead(400, { 'content-type': 'application/json; charset=UTF-8', 'content-encoding': 'gzip' });
        return res.end(gzipSync(JSON.stringify({ error: { type: 'OAuthException', code: 190 } })));
      }
      case '/api/graph/refused':
        return json(400, { error: { type: 'OAuthException', code: 190 } });
      case '/api/graph/other':
        return json(400, { error: { type: 'GraphMethodException', code: 100 } });
      case '/api/graph/large':
        // The declared failure, but in a body over the 64 KiB the proxy reads: passed on unread.
        return json(400, { error: { code: 190 }, padding: 'x'.repeat(100_000) });
      case '/api/redirect':
        res.writeHead(302, { location: 'https://attacker.example/steal' });
        return res.end();
      case '/api/leaky':
        return json(
          200,
          { ok: true },
          {
            'set-cookie': ['session=abc; HttpOnly', 'other=def'],
            authorization: `echo ${req.headers.authorization}`,
            'proxy-authorization': 'Basic eDp5',
            connection: 'x-hop',
            'x-hop': 'connection-scoped',
            'x-kept': 'yes',
          },
        );
      case '/api/gzip': {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
        return res.end(gzipSync('hello, decoded'));
      }
      case '/api/busy': {
        const times = Number(url.searchParams.get('times') ?? 1);
        if (count <= times)
          return json(
            Number(url.searchParams.get('status') ?? 429),
            { error: 'slow down' },
            { 'retry-after': url.searchParams.get('after') ?? '0' },
          );
        return json(200, { attempt: count });
      }
      case '/api/stall-body':
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.write('first chunk'); // and nothing more
      case '/api/no-content':
        res.writeHead(204);
        return res.end();
      default:
        return json(200, { method: req.method, path: url.pathname, query: url.search, bytes });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
  return {
    origin: `http://localhost:${(server.address() as AddressInfo).port}`,
    seen,
    counters,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
