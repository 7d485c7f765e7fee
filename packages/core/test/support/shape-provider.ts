import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny OAuth provider on 127.0.0.1 whose endpoints answer in whatever shape a test gives them:
 * Slack's nested `authed_user`, GitHub's expiry-less tokens, Salesforce's extra fields, HTTP 200
 * errors, bodies that are not JSON. The authorization endpoint has no UI: it redirects straight
 * back with a code. Every request is recorded as it reached the wire.
 */

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The form-encoded body, parsed; empty for other bodies. */
  form: URLSearchParams;
  /** The body as it came, for the providers that take JSON (Square). */
  text: string;
}

export interface Answer {
  status?: number;
  /** Serialised as JSON unless `raw` is given. */
  body?: unknown;
  /** A body sent as is. */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export type Handler = (request: SeenRequest) => Answer | Promise<Answer>;

/** What the authorization endpoint saw for one issued code: the test's token handler may need its nonce or PKCE challenge. */
export interface IssuedCode {
  code: string;
  query: URLSearchParams;
}

export interface ShapeProvider {
  origin: string;
  /** Every request, in order of arrival. */
  requests: SeenRequest[];
  /** The requests to one path. */
  seen(path: string): SeenRequest[];
  /** Serves `path` with `handler`; replaces an earlier handler for it. */
  on(path: string, handler: Handler): void;
  /** Serves `path` as an authorization endpoint that redirects back at once with `code` and `state` (and `iss`, when given). */
  authorizeAt(path: string, options?: { iss?: string }): void;
  /** The authorization request a code was issued for. */
  issued(code: string): IssuedCode | undefined;
  /** Follows an authorization URL to the endpoint and returns the callback URL it redirects to (not fetched). */
  authorize(url: string): Promise<URL>;
  /** An RS256 ID token over `claims`, as a provider's token endpoint returns it. */
  idToken(claims: Record<string, unknown>): string;
  close(): Promise<void>;
}

export const json = (body: unknown, status = 200): Answer => ({ status, body });

/** RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)). */
export const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** The `Authorization: Basic` credentials as RFC 6749 §2.3.1 defines them: form-url-decoded after base64. */
export function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

export async function startShapeProvider(): Promise<ShapeProvider> {
  const handlers = new Map<string, Handler>();
  const codes = new Map<string, IssuedCode>();
  const requests: SeenRequest[] = [];
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

  const server = createServer((req, res) => {
    void serve(req, res).catch((err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`shape provider failed: ${err.message}`);
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      form: new URLSearchParams(isForm ? text : ''),
      text,
    };
    requests.push(seen);
    const handler = handlers.get(url.pathname);
    const answer: Answer = handler ? await handler(seen) : { status: 404, body: { error: 'not_found' } };
    const body = answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
    const contentType = answer.contentType ?? (answer.raw === undefined ? 'application/json' : 'text/plain');
    res.writeHead(answer.status ?? 200, { 'content-type': contentType, ...answer.headers }).end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    requests,
    seen: (path) => requests.filter((r) => r.path === path),
    on: (path, handler) => void handlers.set(path, handler),
    authorizeAt(path, options = {}) {
      handlers.set(path, ({ query }) => {
        const code = randomBytes(12).toString('base64url');
        codes.set(code, { code, query });
        const back = new URL(query.get('redirect_uri')!);
        back.searchParams.set('code', code);
        back.searchParams.set('state', query.get('state') ?? '');
        if (options.iss) back.searchParams.set('iss', options.iss);
        return { status: 302, headers: { location: back.href } };
      });
    },
    issued: (code) => codes.get(code),
    async authorize(url) {
      const response = await fetch(url, { redirect: 'manual' });
      await response.body?.cancel();
      const location = response.headers.get('location');
      if (response.status !== 302 || !location) throw new Error(`the authorization endpoint answered ${response.status}, not a redirect`);
      return new URL(location);
    },
    idToken(claims) {
      const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const input = `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}`;
      return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
