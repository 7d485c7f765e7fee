/**
 * A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider) in this process: the
 * server's built-in sandbox provider, the tests' standards-conformant peer and the examples'
 * stand-ins' sign-in. It is a plain Node request handler, mounted under the issuer's path by its
 * host, or served on its own loopback port by `startAuthorizationServer`.
 *
 * oidc-provider 9 behaviour relied on (and relied on by the tests):
 * - PKCE S256 is required of every client (RFC 9700 §2.1.1); a missing or `plain` challenge is
 *   redirected back as `error=invalid_request`.
 * - Every code grant gets a refresh token (no offline_access + prompt=consent needed), and, unless
 *   told otherwise, each refresh rotates it; presenting a rotated-away token fails AND revokes the
 *   whole grant, including its newest token (reuse detection).
 * - Every refresh failure is `invalid_grant` with the generic description "grant request is
 *   invalid"; the reason (not found, already used, grant gone) is not sent.
 * - Revoking a refresh token (RFC 7009) ends its grant.
 * - `openid` is optional for the code flow, but userinfo rejects access tokens without it (403
 *   insufficient_scope). Scopes beyond the OIDC ones (e.g. `tasks:read`) come back in `scope`.
 * - The authorization response carries `iss` (RFC 9207).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { isUnder, listenOnLoopback, sendHtml } from './http.js';
import { interactionHandlers } from './interactions.js';
import { loadProvider } from './load.js';
import { errorPage } from './pages.js';
import { GrantStore } from './store.js';

/** A confidential client: code + refresh_token grants. */
export interface ClientRegistration {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  /** Shown on the sign-in and consent pages (default: the client id). */
  client_name?: string;
  /** Defaults to `client_secret_basic`. */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post';
  /** Defaults to the code flow with refresh; `['client_credentials']` makes a machine client (RFC 6749 §4.4). */
  grant_types?: string[];
}

export interface AuthorizationServerOptions {
  /** The issuer URL; its path is where the server is mounted (e.g. `http://localhost:3000/_sandbox`). */
  issuer: string;
  /** Clients registered at start; more can be added (or replaced) with `addClient`. */
  clients?: ClientRegistration[];
  /** Access token lifetime in seconds (default 300). */
  accessTokenTtl?: number;
  /** Refresh token lifetime in seconds (default 14 days). */
  refreshTokenTtl?: number;
  /** Whether each refresh returns a new refresh token and retires the old one (default true). */
  rotateRefreshTokens?: boolean;
  /** Scopes accepted besides openid, offline_access, email and profile (e.g. an API's `tasks:read`). */
  apiScopes?: string[];
  /** Open dynamic client registration (RFC 7591) at `/reg`. */
  registration?: boolean;
  /** The claims of an account, by the user name it signed in with (default {@link accountClaims}). */
  accountClaims?: (accountId: string) => Record<string, unknown>;
  /** A JSON file keeping grants, tokens and keys across restarts; in memory only when absent. */
  stateFile?: string;
  /**
   * oidc-provider configuration laid over this module's (shallowly): what a stand-in for a real
   * provider changes, such as `routes` (its endpoint paths), `extraParams` or `issueRefreshToken`.
   */
  configuration?: Record<string, unknown>;
}

export interface AuthorizationServer {
  /** The issuer, without a trailing slash; discovery is at `${issuer}/.well-known/openid-configuration`. */
  readonly issuer: string;
  /** The issuer's path (`/_sandbox`), or `''` when the server owns its origin. */
  readonly basePath: string;
  /** The underlying oidc-provider instance, for its endpoint URLs (`urlFor`) and anything else not covered here; middleware (`use`) must be added before the first request. */
  readonly provider: Provider;
  /** Serves one request whose URL path is under `basePath`: a plain Node handler. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Registers a client, or replaces one with the same id; invalid metadata rejects here, not at the first authorization. */
  addClient(client: ClientRegistration): Promise<void>;
  /** Revokes every grant of an account (as a user would at a real provider's "connected apps" page); returns how many. */
  revokeGrantsFor(accountId: string): Promise<number>;
  /** Revokes every grant; returns how many. */
  revokeAllGrants(): Promise<number>;
  /** How many refresh tokens are live (unexpired, not consumed), for all accounts. */
  countRefreshTokens(): number;
  /** Whether a refresh would accept this token (exists, unexpired, not rotated away, grant alive). */
  isRefreshTokenActive(refreshToken: string): Promise<boolean>;
  /** Writes any pending state; a server on its own port also stops listening. */
  close(): Promise<void>;
}

/** The claims of the account a user name signs in as. */
export function accountClaims(accountId: string): Record<string, unknown> {
  return {
    sub: accountId,
    name: `Sandbox user ${accountId}`,
    preferred_username: accountId,
    email: `${accountId.toLowerCase().replace(/[^a-z0-9._-]+/g, '-') || 'user'}@sandbox.everyauth.test`,
    email_verified: true,
  };
}

/** The authorization server at `options.issuer`, for its host to mount (see `handle`). */
export async function createAuthorizationServer(options: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const issuerUrl = new URL(options.issuer);
  if (issuerUrl.search || issuerUrl.hash) throw new TypeError('The issuer must not have a query or fragment (RFC 8414 §2).');
  const issuer = issuerUrl.href.replace(/\/+$/, '');
  const basePath = issuerUrl.pathname.replace(/\/+$/, '');
  const store = new GrantStore(options.stateFile);
  const Provider = await loadProvider();
  const provider = new Provider(issuer, configuration(options, store, basePath));
  // Behind a TLS-terminating proxy, X-Forwarded-Proto tells oidc-provider the URLs it advertises are https.
  provider.proxy = true;
  // Made at the first request, not here: Koa composes the middleware when callback() is called, so
  // `provider.use()` (a stand-in reshaping token responses) would otherwise have no effect.
  let callback: ReturnType<Provider['callback']> | undefined;
  const interactions = interactionHandlers(provider, basePath);

  async function addClient(client: ClientRegistration): Promise<void> {
    const metadata = {
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
      grant_types: client.grant_types ?? ['authorization_code', 'refresh_token'],
      response_types: (client.grant_types ?? ['authorization_code']).includes('authorization_code') ? ['code'] : [],
    };
    await provider.Client.validate(metadata);
    store.upsert('Client', client.client_id, metadata);
  }
  for (const client of options.clients ?? []) await addClient(client);

  return {
    issuer,
    basePath,
    provider,
    handle(req, res) {
      const fullUrl = req.url ?? '/';
      if (!isUnder(fullUrl, basePath)) return void sendHtml(res, 404, errorPage('Not a sandbox URL.'));
      // The mount point: oidc-provider derives it from originalUrl minus url, as under Express's app.use.
      Object.assign(req, { originalUrl: fullUrl, url: fullUrl.slice(basePath.length) || '/' });
      if (!interactions(req, res)) (callback ??= provider.callback())(req, res);
    },
    addClient,
    revokeGrantsFor: async (accountId) => store.destroyGrants((grant) => grant.accountId === accountId),
    revokeAllGrants: async () => store.destroyGrants(() => true),
    countRefreshTokens: () => store.ids('RefreshToken', (token) => !token.consumed).length,
    async isRefreshTokenActive(refreshToken) {
      const token = await provider.RefreshToken.find(refreshToken);
      if (!token || token.isExpired || token.consumed) return false;
      return store.find('Grant', token.grantId) !== undefined;
    },
    close: async () => store.flush(),
  };
}

/** An authorization server owning the origin of a loopback port (default: a free one); close() stops it. */
export async function startAuthorizationServer(
  options: Omit<AuthorizationServerOptions, 'issuer'> & { port?: number },
): Promise<AuthorizationServer> {
  const target: { server?: AuthorizationServer } = {};
  const listener = await listenOnLoopback((req, res) => (target.server ? target.server.handle(req, res) : res.end()), options.port);
  const server = await createAuthorizationServer({ ...options, issuer: listener.origin }).catch(async (err: unknown) => {
    await listener.close();
    throw err;
  });
  target.server = server;
  return {
    ...server,
    async close() {
      await server.close();
      await listener.close();
    },
  };
}

function configuration(options: AuthorizationServerOptions, store: GrantStore, basePath: string): Record<string, unknown> {
  const keys = store.keys(() => ({ cookies: [randomBytes(32).toString('base64url')], jwk: signingKey() }));
  const rotate = options.rotateRefreshTokens ?? true;
  const claimsOf = options.accountClaims ?? accountClaims;
  const base = {
    adapter: (model: string) => store.adapter(model),
    findAccount: (_ctx: unknown, accountId: string) => ({ accountId, claims: async () => claimsOf(accountId) }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', ...(options.apiScopes ?? [])],
    // The granted profile and email claims go in the ID token too, which is where the broker reads the profile.
    conformIdTokenClaims: false,
    jwks: { keys: [keys.jwk] },
    cookies: { keys: keys.cookies },
    pkce: { required: () => true }, // oidc-provider 9 only implements S256, so this is "S256 always"
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${basePath}/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      // RFC 7009 §2.1: a client revokes only tokens issued to it.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) =>
          token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      registration: { enabled: options.registration === true },
    },
    // Every code grant gets a refresh token: refreshing is what this server is for.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(grant: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    // Tokens outlive the browser session that obtained them, as at real providers.
    expiresWithSession: async () => false,
    rotateRefreshToken: () => rotate,
    // Every TTL explicit: oidc-provider warns about each default it has to fall back on.
    ttl: {
      AccessToken: options.accessTokenTtl ?? 300,
      ClientCredentials: options.accessTokenTtl ?? 300,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 14 * 86400,
      Grant: 14 * 86400,
      RefreshToken: options.refreshTokenTtl ?? 14 * 86400,
    },
    renderError: async (ctx: { type: string; body: string }, out: { error?: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = errorPage(`${out.error ?? 'server_error'}: ${out.error_description ?? 'the request could not be processed.'}`);
    },
  };
  return { ...base, ...options.configuration };
}

/**
 * A new RS256 signing key as a JWK. The key is exported as DER from the generator and read back into
 * a key object of its own before its JWK is made: on Node 20, the key object `generateKeyPairSync`
 * returns shares its lock with the generator's job, and a JWK export of it, which allocates while it
 * holds that lock, could start a garbage collection that destroys the job, whose destructor then waits
 * for the same lock for ever (seen in CI: the main thread in `~KeyGenJob` under `ExportJWK`).
 */
function signingKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  const jwk = createPrivateKey({ key: privateKey, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  return { ...jwk, kid: `sandbox-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
}
