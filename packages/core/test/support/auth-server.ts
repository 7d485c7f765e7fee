/**
 * The tests' OAuth 2.0 / OpenID Connect authorization server: @everyauth/oauth-server (the real
 * oidc-provider, the same server as the sandbox) on a loopback port, so the broker is tested
 * against a standards-conformant peer rather than a mock, plus what only tests need: token
 * requests counted by grant, and faults and delays injected before oidc-provider sees them.
 *
 *   const as = await startAuthServer({ clients: [{ client_id: 'app', client_secret: 's', redirect_uris: [cb] }] });
 *   const callback = await as.authorize(urlTheBrokerBuilt, { login: 'alice' }); // cb?code&state&iss, unfetched
 *   as.failNextTokenRequests(1, { status: 503 });
 *
 * oidc-provider's behaviour worth knowing is listed in @everyauth/oauth-server's authorization-server.ts.
 */
import { IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  authorizeOverHttp,
  createAuthorizationServer,
  listenOnLoopback,
  type AuthorizationServer,
  type AuthorizeOptions,
  type ClientRegistration,
} from '@everyauth/oauth-server';

export { DEFAULT_LOGIN, type AuthorizeOptions } from '@everyauth/oauth-server';

export type AuthServerClient = ClientRegistration;

export interface AuthServerOptions {
  /** Registered clients (grant types code + refresh_token); default: {@link DEFAULT_CLIENT}. */
  clients?: AuthServerClient[];
  /** Access token lifetime in seconds (default 5, so expiry-driven refresh is quick to test). */
  accessTokenTtl?: number;
  /** Whether every refresh returns a new refresh token and retires the old one (default true). */
  rotateRefreshTokens?: boolean;
  /** Delay applied to every token request before it reaches the provider (default 0). */
  tokenDelayMs?: number;
  /** API scopes accepted besides openid, email, profile, offline_access. */
  apiScopes?: string[];
  /** Open dynamic client registration (RFC 7591) at /reg. */
  registration?: boolean;
}

/**
 * What the next token request(s) get instead of the provider's answer: this status, body (JSON
 * unless a string) and headers; or held for delayMs, then answered normally (instead of, not on
 * top of, tokenDelayMs); or the socket destroyed unanswered (a network error for the client).
 */
export type TokenFault =
  | { status: number; body?: unknown; headers?: Record<string, string>; /** held this long before the answer */ delayMs?: number }
  | { delayMs: number }
  | { reset: true };

export interface TokenRequestCounts {
  /** Every POST /token that arrived, faulted or not. */
  total: number;
  /** The same, by `grant_type` (`authorization_code`, `refresh_token`, …). */
  byGrant: Record<string, number>;
  /** Token requests being answered right now, and the most there were at once (since the last reset). */
  inFlight: number;
  maxInFlight: number;
}

export interface AuthServer {
  /** `http://127.0.0.1:<port>`; discovery is at `${issuer}/.well-known/openid-configuration`. */
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly tokenRequests: TokenRequestCounts;
  /** Delay applied to every token request; settable at any time. */
  tokenDelayMs: number;
  /** The underlying oidc-provider instance, for anything this wrapper does not cover. */
  readonly provider: AuthorizationServer['provider'];
  /** Registers a client, or replaces one with the same id (e.g. once a test server's port is known). */
  addClient(client: AuthServerClient): Promise<void>;
  /** Drives login and consent over HTTP; returns the redirect to the client's redirect_uri, unfetched. */
  authorize(url: string | URL, options?: AuthorizeOptions): Promise<URL>;
  /** The next `count` token requests get `fault`; calls queue up in order. */
  failNextTokenRequests(count: number, fault: TokenFault): void;
  /** Zeroes the counters and drops queued faults. */
  resetCounters(): void;
  /** Revokes every grant of the account, so its refresh tokens yield `invalid_grant`; returns how many. */
  revokeGrantsFor(accountId: string): Promise<number>;
  revokeAllGrants(): Promise<number>;
  /** Whether a refresh would accept this token (exists, unexpired, not rotated away, grant alive). */
  isRefreshTokenActive(refreshToken: string): Promise<boolean>;
  /** GET userinfo with the access token as a Bearer token. */
  userinfo(accessToken: string): Promise<Response>;
  close(): Promise<void>;
}

export const DEFAULT_CLIENT: AuthServerClient = {
  client_id: 'everyauth-test',
  client_secret: 'everyauth-test-secret',
  redirect_uris: ['http://127.0.0.1/callback'],
};

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const counts: TokenRequestCounts = { total: 0, byGrant: {}, inFlight: 0, maxInFlight: 0 };
  const faults: TokenFault[] = [];
  let tokenDelayMs = options.tokenDelayMs ?? 0;

  const target: { server?: AuthorizationServer } = {};
  const handle = (req: IncomingMessage, res: ServerResponse) => (target.server ? target.server.handle(req, res) : res.end());
  const listener = await listenOnLoopback((req, res) => {
    if (req.method === 'POST' && new URL(req.url ?? '/', 'http://x').pathname === '/token') {
      counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight);
      res.once('close', () => counts.inFlight--);
      handleTokenRequest(req, res).catch((error: unknown) => res.destroy(error as Error));
    } else {
      handle(req, res);
    }
  });
  const server = await createAuthorizationServer({
    issuer: listener.origin,
    clients: options.clients ?? [DEFAULT_CLIENT],
    accessTokenTtl: options.accessTokenTtl ?? 5,
    rotateRefreshTokens: options.rotateRefreshTokens,
    apiScopes: options.apiScopes ?? ['tasks:read', 'tasks:write'],
    registration: options.registration,
    accountClaims,
  }).catch(async (err: unknown) => {
    await listener.close();
    throw err;
  });
  target.server = server;
  const { issuer } = server;

  async function handleTokenRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const grantType = new URLSearchParams(body.toString('utf8')).get('grant_type') ?? '(none)';
    counts.total += 1;
    counts.byGrant[grantType] = (counts.byGrant[grantType] ?? 0) + 1;

    const fault = faults.shift();
    if (fault && 'reset' in fault) return void req.socket.destroy();
    if (fault && 'status' in fault) {
      if (fault.delayMs) await sleep(fault.delayMs);
      return sendFault(res, fault);
    }
    const delayMs = fault && 'delayMs' in fault ? fault.delayMs : tokenDelayMs;
    if (delayMs > 0) await sleep(delayMs);
    // A client that hung up while the request was held never gets an answer, so the request is
    // dropped rather than processed: otherwise a rotated refresh token would be issued to nobody.
    if (req.socket.destroyed || res.closed) return void res.destroy();
    handle(withReplayedBody(req, body), res);
  }

  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    tokenRequests: counts,
    get tokenDelayMs() {
      return tokenDelayMs;
    },
    set tokenDelayMs(ms: number) {
      tokenDelayMs = ms;
    },
    provider: server.provider,
    addClient: server.addClient,
    authorize: (url, authorizeOptions) => authorizeOverHttp(issuer, url, authorizeOptions),
    failNextTokenRequests: (count, fault) => void faults.push(...Array<TokenFault>(count).fill(fault)),
    resetCounters() {
      counts.total = 0;
      counts.maxInFlight = counts.inFlight;
      for (const grant of Object.keys(counts.byGrant)) delete counts.byGrant[grant];
      faults.length = 0;
    },
    revokeGrantsFor: server.revokeGrantsFor,
    revokeAllGrants: server.revokeAllGrants,
    isRefreshTokenActive: server.isRefreshTokenActive,
    userinfo: (accessToken) => fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } }),
    async close() {
      await server.close();
      await listener.close();
    },
  };
}

/** The tests' accounts: `User <id>`, `<id>@example.test`. */
export function accountClaims(accountId: string): Record<string, unknown> {
  return { sub: accountId, name: `User ${accountId}`, email: `${accountId}@example.test`, email_verified: true };
}

// ---- token request plumbing -----------------------------------------------------------------

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A request carrying a body we already read (to count grant types and inject faults before
 * oidc-provider sees it). Handing oidc-provider a pre-parsed `req.body` instead works too, but
 * makes it print a warning.
 */
function withReplayedBody(req: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = new IncomingMessage(req.socket);
  const { method, url, headers, rawHeaders, httpVersion, httpVersionMajor, httpVersionMinor } = req;
  Object.assign(replay, { method, url, headers, rawHeaders, httpVersion, httpVersionMajor, httpVersionMinor, complete: true });
  replay.push(body);
  replay.push(null);
  return replay;
}

function sendFault(res: ServerResponse, fault: Extract<TokenFault, { status: number }>): void {
  const isText = typeof fault.body === 'string' || fault.body === undefined;
  const body = isText ? ((fault.body as string | undefined) ?? '') : JSON.stringify(fault.body);
  res.writeHead(fault.status, {
    'cache-control': 'no-store',
    ...(isText ? {} : { 'content-type': 'application/json' }),
    ...fault.headers,
  });
  res.end(body);
}
