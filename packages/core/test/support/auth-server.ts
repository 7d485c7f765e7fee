/**
 * An in-process OAuth 2.0 / OpenID Connect authorization server for tests, built on the real
 * `oidc-provider` so the broker is tested against a standards-conformant peer rather than a mock.
 *
 *   const as = await startAuthServer({ clients: [{ client_id: 'app', client_secret: 's', redirect_uris: [cb] }] });
 *   const callback = await as.authorize(urlTheBrokerBuilt, { login: 'alice' }); // cb?code&state&iss, unfetched
 *   as.failNextTokenRequests(1, { status: 503 });
 *
 * Behaviour worth knowing (oidc-provider 9):
 * - PKCE S256 is required for every client; a missing or `plain` challenge is redirected back as
 *   `error=invalid_request`.
 * - A refresh token is issued for every code grant (no `offline_access`/`prompt=consent` needed).
 * - Every refresh failure is `invalid_grant` with the generic description "grant request is
 *   invalid"; the reason (not found, already used, grant gone) is not sent.
 * - Refresh tokens rotate by default; presenting a rotated-away token fails AND revokes the whole
 *   grant, including its newest token (reuse detection).
 * - `openid` is optional for the code flow, but the userinfo endpoint rejects access tokens
 *   without it (403 insufficient_scope).
 * - Custom API scopes (e.g. `tasks:read`) come back in the token response's `scope`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Provider from 'oidc-provider';

export interface AuthServerClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  /** Defaults to `client_secret_basic`. */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post';
  /** Defaults to the code flow with refresh; `['client_credentials']` makes a machine client. */
  grant_types?: string[];
}

export interface AuthServerOptions {
  /** Registered clients (grant types code + refresh_token); default: {@link DEFAULT_CLIENT}. */
  clients?: AuthServerClient[];
  /** Access token lifetime in seconds (default 5, so expiry-driven refresh is quick to test). */
  accessTokenTtl?: number;
  /** Whether every refresh returns a new refresh token and retires the old one (default true). */
  rotateRefreshTokens?: boolean;
  /** Delay applied to every token request before it reaches the provider (default 0). */
  tokenDelayMs?: number;
  /** Open dynamic client registration (RFC 7591) at /reg. */
  registration?: boolean;
  /** API scopes accepted besides openid, email, profile, offline_access. */
  apiScopes?: string[];
}

/**
 * What the next token request(s) get instead of the provider's answer: this status, body (JSON
 * unless a string) and headers; or held for delayMs, then answered normally (instead of, not on
 * top of, tokenDelayMs); or the socket destroyed unanswered (a network error for the client).
 */
export type TokenFault = { status: number; body?: unknown; headers?: Record<string, string> } | { delayMs: number } | { reset: true };

export interface TokenRequestCounts {
  /** Every POST /token that arrived, faulted or not. */
  total: number;
  /** The same, by `grant_type` (`authorization_code`, `refresh_token`, …). */
  byGrant: Record<string, number>;
}

export interface AuthorizeOptions {
  /** Account id to sign in as (default `user-1`); claims are derived from it. */
  login?: string;
  /** Abort the interaction instead of consenting: the callback carries `error=access_denied`. */
  deny?: boolean;
}

export interface AuthServer {
  /** `http://127.0.0.1:<port>`; discovery is at `${issuer}/.well-known/openid-configuration`. */
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly tokenRequests: TokenRequestCounts;
  /** Delay applied to every token request; settable at any time. */
  tokenDelayMs: number;
  /** The underlying oidc-provider instance, for anything this wrapper does not cover. */
  readonly provider: any;
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

/** The account authorize() signs in as unless told otherwise. */
export const DEFAULT_LOGIN = 'user-1';

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const store = new MemoryStore();
  const counts: TokenRequestCounts = { total: 0, byGrant: {} };
  const faults: TokenFault[] = [];
  let tokenDelayMs = options.tokenDelayMs ?? 0;

  let handleProvider: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server = createServer((req, res) => {
    if (req.method === 'POST' && new URL(req.url ?? '/', 'http://x').pathname === '/token') {
      handleTokenRequest(req, res).catch((error: unknown) => res.destroy(error as Error));
    } else {
      handleProvider(req, res);
    }
  });
  const issuer = `http://127.0.0.1:${await listenOnFreePort(server)}`;

  const provider = quietly(() => new Provider(issuer, providerConfiguration(options, store)));
  handleProvider = provider.callback();

  async function handleTokenRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const grantType = new URLSearchParams(body.toString('utf8')).get('grant_type') ?? '(none)';
    counts.total += 1;
    counts.byGrant[grantType] = (counts.byGrant[grantType] ?? 0) + 1;

    const fault = faults.shift();
    if (fault && 'reset' in fault) return void req.socket.destroy();
    if (fault && 'status' in fault) return sendFault(res, fault);
    const delayMs = fault && 'delayMs' in fault ? fault.delayMs : tokenDelayMs;
    if (delayMs > 0) await sleep(delayMs);
    // A client that hung up while the request was held never gets an answer, so the request is
    // dropped rather than processed: otherwise a rotated refresh token would be issued to nobody.
    if (req.socket.destroyed || res.closed) return void res.destroy();
    handleProvider(withReplayedBody(req, body), res);
  }

  async function addClient(client: AuthServerClient): Promise<void> {
    const metadata = clientMetadata(client);
    await provider.Client.validate(metadata); // fail here, not at the first authorization request
    store.upsert('Client', client.client_id, metadata);
  }

  for (const client of options.clients ?? [DEFAULT_CLIENT]) await addClient(client);

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
    provider,
    addClient,
    authorize: (url, authorizeOptions) => driveAuthorization(issuer, new URL(url), authorizeOptions),
    failNextTokenRequests: (count, fault) => void faults.push(...Array<TokenFault>(count).fill(fault)),
    resetCounters() {
      counts.total = 0;
      for (const grant of Object.keys(counts.byGrant)) delete counts.byGrant[grant];
      faults.length = 0;
    },
    revokeGrantsFor: async (accountId) => store.destroyGrants((grant) => grant.accountId === accountId),
    revokeAllGrants: async () => store.destroyGrants(() => true),
    async isRefreshTokenActive(refreshToken) {
      const token = await provider.RefreshToken.find(refreshToken);
      if (!token || token.isExpired || token.consumed) return false;
      return store.find('Grant', token.grantId) !== undefined;
    },
    userinfo: (accessToken) => fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } }),
    close: () => closeServer(server),
  };
}

function providerConfiguration(options: AuthServerOptions, store: MemoryStore): Record<string, unknown> {
  const scopes = ['openid', 'offline_access', 'email', 'profile', ...(options.apiScopes ?? ['tasks:read', 'tasks:write'])];
  const rotate = options.rotateRefreshTokens ?? true;
  return {
    adapter: (model: string) => store.adapter(model),
    findAccount: (_ctx: unknown, accountId: string) => ({ accountId, claims: async () => accountClaims(accountId) }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    scopes,
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true }, // oidc-provider 9 only knows S256, so this means "S256 always"
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      registration: { enabled: options.registration === true },
    },
    // Every code grant gets a refresh token, without the offline_access + prompt=consent dance.
    issueRefreshToken: async (_ctx: unknown, client: any) => client.grantTypeAllowed('refresh_token'),
    // Otherwise tokens die with the (cookie) session that obtained them, which tests never keep.
    expiresWithSession: async () => false,
    rotateRefreshToken: () => rotate,
    // Every TTL set explicitly: oidc-provider warns about each default it has to use.
    ttl: {
      AccessToken: options.accessTokenTtl ?? 5,
      ClientCredentials: options.accessTokenTtl ?? 5,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 14 * 86400,
      RefreshToken: 14 * 86400,
    },
    clientBasedCORS: () => true,
    // JSON rather than an HTML page, so a failing authorize() can say what went wrong.
    renderError: async (ctx: any, out: unknown) => Object.assign(ctx, { type: 'json', body: out }),
  };
}

function clientMetadata(client: AuthServerClient): Payload {
  const { token_endpoint_auth_method = 'client_secret_basic', grant_types = ['authorization_code', 'refresh_token'] } = client;
  const response_types = grant_types.includes('authorization_code') ? ['code'] : [];
  return { ...client, token_endpoint_auth_method, grant_types, response_types };
}

export function accountClaims(accountId: string): Record<string, unknown> {
  return { sub: accountId, name: `User ${accountId}`, email: `${accountId}@example.test`, email_verified: true };
}

function signingKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
}

// ---- interaction driving -------------------------------------------------------------------

async function driveAuthorization(issuer: string, start: URL, options: AuthorizeOptions = {}): Promise<URL> {
  const jar = new CookieJar();
  let request: { url: URL; form?: Record<string, string> } = { url: start };
  for (let hop = 0; hop < 20; hop += 1) {
    const response = await fetch(request.url, {
      method: request.form ? 'POST' : 'GET',
      body: request.form ? new URLSearchParams(request.form) : undefined,
      headers: { cookie: jar.header() },
      redirect: 'manual',
    });
    jar.store(response.headers);

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, request.url);
      await response.body?.cancel();
      if (next.origin !== issuer) return next; // the client's redirect_uri: hand it back unfetched
      request = { url: next };
    } else if (response.ok && /^\/interaction\/[^/]+$/.test(request.url.pathname)) {
      request = answerInteraction(request.url, await response.text(), options);
    } else {
      throw new Error(`authorization failed at ${request.url.pathname}: ${response.status} ${await response.text()}`);
    }
  }
  throw new Error('authorization did not reach the redirect_uri within 20 hops');
}

/** The dev interaction pages: the form posts back to the same URL, abort is `<url>/abort`. */
function answerInteraction(page: URL, html: string, options: AuthorizeOptions): { url: URL; form?: Record<string, string> } {
  if (options.deny) return { url: new URL(`${page.pathname}/abort`, page) };
  const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
  switch (prompt) {
    case 'login':
      return { url: page, form: { prompt, login: options.login ?? DEFAULT_LOGIN, password: 'any' } };
    case 'consent':
      return { url: page, form: { prompt } };
    default:
      throw new Error(`unexpected interaction page at ${page.pathname}: ${html.slice(0, 200)}`);
  }
}

/**
 * Cookies by name only: one jar per authorize() call and one origin, so paths and domains do not
 * matter, and a later cookie of the same name (the next interaction's) is the one to send.
 */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const [name = '', value = ''] = pair.split(/=(.*)/s).map((part) => part.trim());
      if (value === '' || attributes.some(isExpiry)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

function isExpiry(attribute: string): boolean {
  const [key = '', value = ''] = attribute.split('=').map((part) => part.trim().toLowerCase());
  return (key === 'max-age' && Number(value) <= 0) || (key === 'expires' && Date.parse(value) <= Date.now());
}

// ---- storage ------------------------------------------------------------------------------

type Payload = Record<string, any>;

/**
 * Our own adapter rather than oidc-provider's (an LRU that cannot be enumerated): revoking by
 * account needs to list grants, and clients live here so addClient can change them after start.
 */
class MemoryStore {
  readonly #entries = new Map<string, { payload: Payload; expiresAt: number }>();

  upsert(model: string, id: string, payload: Payload, expiresInSeconds?: number): void {
    const expiresAt = expiresInSeconds === undefined ? Infinity : Date.now() + expiresInSeconds * 1000;
    this.#entries.set(`${model}:${id}`, { payload, expiresAt });
  }

  find(model: string, id: string): Payload | undefined {
    const entry = this.#entries.get(`${model}:${id}`);
    if (entry && entry.expiresAt > Date.now()) return entry.payload;
    this.#entries.delete(`${model}:${id}`);
    return undefined;
  }

  /** Ids of the model's live entries whose payload matches. */
  ids(model: string, matches: (payload: Payload) => boolean): string[] {
    const prefix = `${model}:`;
    return [...this.#entries]
      .filter(([key, { payload, expiresAt }]) => key.startsWith(prefix) && expiresAt > Date.now() && matches(payload))
      .map(([key]) => key.slice(prefix.length));
  }

  /** Removes the matching grants and every token issued under them, whatever its model. */
  destroyGrants(matches: (grant: Payload) => boolean): number {
    const grantIds = new Set(this.ids('Grant', matches));
    for (const grantId of grantIds) this.#entries.delete(`Grant:${grantId}`);
    for (const [key, { payload }] of this.#entries) if (grantIds.has(payload.grantId)) this.#entries.delete(key);
    return grantIds.size;
  }

  adapter(model: string) {
    const firstMatch = (matches: (payload: Payload) => boolean) => {
      const [id] = this.ids(model, matches);
      return id === undefined ? undefined : this.find(model, id);
    };
    return {
      upsert: async (id: string, payload: Payload, expiresIn?: number) => this.upsert(model, id, payload, expiresIn),
      find: async (id: string) => this.find(model, id),
      findByUid: async (uid: string) => firstMatch((payload) => payload.uid === uid),
      findByUserCode: async (userCode: string) => firstMatch((payload) => payload.userCode === userCode),
      destroy: async (id: string) => void this.#entries.delete(`${model}:${id}`),
      consume: async (id: string) => void Object.assign(this.find(model, id) ?? {}, { consumed: Math.floor(Date.now() / 1000) }),
      revokeByGrantId: async (grantId: string) => {
        for (const id of this.ids(model, (payload) => payload.grantId === grantId)) this.#entries.delete(`${model}:${id}`);
      },
    };
  }
}

// ---- HTTP plumbing --------------------------------------------------------------------------

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

/**
 * oidc-provider prints development-mode notices (dev interactions, etc.) while it is constructed;
 * they are expected here, so console.warn/info drop them for the duration of this synchronous call
 * (synchronous, so concurrent servers cannot interleave and leave the console patched). Its one
 * import-time notice, "Unsupported runtime" on Node 20, still prints once per process.
 */
function quietly<T>(construct: () => T): T {
  const { warn, info } = console;
  const unlessOidcProvider =
    (log: typeof warn) =>
    (...args: unknown[]) =>
      void (String(args[0]).includes('oidc-provider') || log(...args));
  console.warn = unlessOidcProvider(warn);
  console.info = unlessOidcProvider(info);
  try {
    return construct();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

function listenOnFreePort(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  server.closeAllConnections(); // keep-alive sockets from fetch would otherwise hold close() open
  await closed;
}
