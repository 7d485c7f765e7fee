/**
 * The built-in `sandbox` provider: a real OAuth 2.0 / OpenID Connect authorization server
 * (oidc-provider) on the same machine, so a new user can authorize, watch a token refresh and
 * revoke it with no third-party account and no network.
 *
 * It is mounted inside the EveryAuth server under the issuer's path (`createSandbox` +
 * `sandboxRoutes`), or runs on its own loopback port (`startSandbox`, for tests and scripts).
 *
 * oidc-provider 9 behaviour relied on:
 * - PKCE S256 is required of every client (RFC 9700 §2.1.1).
 * - Every code grant gets a refresh token (no offline_access + prompt=consent needed), and, unless
 *   told otherwise, each refresh rotates it; reusing a rotated-away token revokes the whole grant.
 * - Revoking a refresh token (RFC 7009) ends its grant, so the identity's refresh then fails with
 *   `invalid_grant`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProviderInput } from '@everyauth/core';
import type Provider from 'oidc-provider';
import { consentPage, errorPage, loginPage } from './pages.js';
import { SandboxState } from './state.js';

export interface SandboxOptions {
  /** The issuer URL; its path is where the sandbox is mounted (e.g. `http://localhost:3000/_sandbox`). */
  issuer: string;
  /** Access token lifetime in seconds (default 60, so refreshes are quick to watch). */
  accessTokenTtl?: number;
  /** Refresh token lifetime in seconds (default 14 days). */
  refreshTokenTtl?: number;
  /** Whether each refresh returns a new refresh token and retires the old one (default true). */
  rotateRefreshTokens?: boolean;
  /** A JSON file keeping grants, tokens and keys across restarts; in memory only when absent. */
  stateFile?: string;
}

export interface Sandbox {
  /** The issuer, without a trailing slash; discovery is at `${issuer}/.well-known/openid-configuration`. */
  readonly issuer: string;
  /** The issuer's path (`/_sandbox`), or `''` when the sandbox owns its origin. */
  readonly basePath: string;
  /** Serves one request whose URL path is under `basePath`: a plain Node handler. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Registers a confidential client (code + refresh_token grants, client_secret_basic), or replaces one with the same id. */
  ensureClient(clientId: string, clientSecret: string, redirectUris: string[]): Promise<void>;
  /** The catalog entry EveryAuth uses for this sandbox, under the given provider id. */
  providerDefinition(id?: string): ProviderInput;
  /** Revokes every grant of an account (as a user would at a real provider's "connected apps" page); returns how many. */
  revokeGrantsFor(accountId: string): Promise<number>;
  close(): Promise<void>;
}

/** The provider id and display name the server registers the sandbox under. */
export const SANDBOX_PROVIDER_ID = 'sandbox';
export const SANDBOX_SCOPES = ['openid', 'profile', 'email'];

let providerClass: Promise<typeof Provider> | undefined;

/**
 * oidc-provider, loaded on first use: every program importing @everyauth/server (the CLI's
 * commands included) would otherwise load it, and print its import-time "Unsupported runtime"
 * notice on Node 20, which it runs on fine; that one notice is dropped here.
 */
function loadProvider(): Promise<typeof Provider> {
  providerClass ??= (async () => {
    const { warn } = console;
    console.warn = (...args: unknown[]) => void (String(args[0]).startsWith('oidc-provider WARNING: Unsupported runtime') || warn(...args));
    try {
      return (await import('oidc-provider')).default;
    } finally {
      console.warn = warn;
    }
  })();
  return providerClass;
}

export async function createSandbox(options: SandboxOptions): Promise<Sandbox> {
  const issuerUrl = new URL(options.issuer);
  if (issuerUrl.search || issuerUrl.hash) throw new TypeError('The sandbox issuer must not have a query or fragment (RFC 8414 §2).');
  const issuer = issuerUrl.href.replace(/\/+$/, '');
  const basePath = issuerUrl.pathname.replace(/\/+$/, '');
  const state = new SandboxState(options.stateFile);
  const Provider = await loadProvider();
  const provider = new Provider(issuer, configuration(options, state, basePath));
  // Behind a TLS-terminating proxy, X-Forwarded-Proto tells oidc-provider the URLs it advertises are https.
  provider.proxy = true;
  const callback = provider.callback();
  const interactions = interactionHandlers(provider, basePath);

  return {
    issuer,
    basePath,
    handle(req, res) {
      const fullUrl = req.url ?? '/';
      if (!isUnder(fullUrl, basePath)) return void sendHtml(res, 404, errorPage('Not a sandbox URL.'));
      // The mount point: oidc-provider derives it from originalUrl minus url, as under Express's app.use.
      Object.assign(req, { originalUrl: fullUrl, url: fullUrl.slice(basePath.length) || '/' });
      const handled = interactions(req, res);
      if (!handled) callback(req, res);
    },
    async ensureClient(clientId, clientSecret, redirectUris) {
      const metadata = {
        client_id: clientId,
        client_secret: clientSecret,
        client_name: 'EveryAuth',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      };
      await provider.Client.validate(metadata); // fail here rather than at the first authorization
      state.upsert('Client', clientId, metadata);
    },
    providerDefinition(id = SANDBOX_PROVIDER_ID) {
      return {
        id,
        name: 'EveryAuth Sandbox',
        docs: `${issuer}/.well-known/openid-configuration`,
        issuer,
        authorizationUrl: provider.urlFor('authorization'),
        tokenUrl: provider.urlFor('token'),
        revocationUrl: provider.urlFor('revocation'),
        userinfoUrl: provider.urlFor('userinfo'),
        authorizationResponseIss: true,
        scopes: { default: SANDBOX_SCOPES, separator: ' ', examples: [...SANDBOX_SCOPES, 'offline_access'] },
        pkce: true,
        clientAuth: 'client_secret_basic',
        token: { refreshTokenRotates: options.rotateRefreshTokens ?? true },
        profile: { source: 'id_token', id: 'sub', name: 'name', email: 'email' },
        notes: 'A local authorization server built into EveryAuth for trying it out: any user name signs in.',
      };
    },
    async revokeGrantsFor(accountId) {
      const grantIds = new Set<string>();
      const grants = state.adapter('Grant');
      // Grants are not indexed by account; the sandbox holds a handful, so a scan is fine.
      for (const id of state.ids('Grant', (grant) => grant.accountId === accountId)) grantIds.add(id);
      for (const grantId of grantIds) {
        for (const model of ['AccessToken', 'RefreshToken', 'AuthorizationCode']) await state.adapter(model).revokeByGrantId(grantId);
        await grants.destroy(grantId);
      }
      return grantIds.size;
    },
    async close() {
      state.flush();
    },
  };
}

/** A sandbox on its own loopback port (default: a free one), owning the whole origin. */
export async function startSandbox(options: Omit<SandboxOptions, 'issuer'> & { port?: number } = {}): Promise<Sandbox> {
  // The issuer names the port, which is known only once listening: requests before that get nothing.
  const target: { sandbox?: Sandbox } = {};
  const server = createServer((req, res) => (target.sandbox ? target.sandbox.handle(req, res) : res.end()));
  const port = await listen(server, options.port ?? 0);
  const mounted = await createSandbox({ ...options, issuer: `http://127.0.0.1:${port}` }).catch(async (err: unknown) => {
    await closeServer(server);
    throw err;
  });
  target.sandbox = mounted;
  return {
    ...mounted,
    async close() {
      await mounted.close();
      await closeServer(server);
    },
  };
}

function configuration(options: SandboxOptions, state: SandboxState, basePath: string): Record<string, unknown> {
  const keys = state.keys(() => ({ cookies: [randomBytes(32).toString('base64url')], jwk: signingKey() }));
  const rotate = options.rotateRefreshTokens ?? true;
  return {
    adapter: (model: string) => state.adapter(model),
    findAccount: (_ctx: unknown, accountId: string) => ({ accountId, claims: async () => accountClaims(accountId) }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
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
    },
    // Every code grant gets a refresh token: refreshing is what the sandbox is for.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(grant: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    // Tokens outlive the browser session at the sandbox that obtained them, as at real providers.
    expiresWithSession: async () => false,
    rotateRefreshToken: () => rotate,
    // Every TTL explicit: oidc-provider warns about each default it has to fall back on.
    ttl: {
      AccessToken: options.accessTokenTtl ?? 300,
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
}

export function accountClaims(accountId: string): Record<string, unknown> {
  return {
    sub: accountId,
    name: `Sandbox user ${accountId}`,
    preferred_username: accountId,
    email: `${accountId.toLowerCase().replace(/[^a-z0-9._-]+/g, '-') || 'user'}@sandbox.everyauth.test`,
    email_verified: true,
  };
}

function signingKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `sandbox-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

// ---- sign-in and consent ------------------------------------------------------------------------

type InteractionHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * Our own sign-in and consent pages in place of oidc-provider's development ones:
 * GET interaction/:uid shows the page the pending prompt needs; POST …/login, …/consent and
 * …/abort answer it. Returns false for any other URL, which then goes to oidc-provider.
 */
function interactionHandlers(provider: Provider, basePath: string): InteractionHandler {
  return (req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent|abort))?$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (!match) return false;
    const [, uid, step] = match;
    const action = step === undefined ? (req.method === 'GET' ? 'show' : undefined) : req.method === 'POST' ? step : undefined;
    if (!action) {
      sendHtml(res, 405, errorPage('This page only answers GET, and its forms POST.'));
      return true;
    }
    answerInteraction(provider, `${basePath}/interaction/${uid}`, action, req, res).catch((err: unknown) => {
      // An expired or unknown interaction (its cookie is gone): say so rather than a bare 500.
      const message = (err as { error_description?: string; message?: string }).error_description ?? (err as Error).message;
      if (!res.headersSent)
        sendHtml(
          res,
          (err as { statusCode?: number }).statusCode ?? 500,
          errorPage(`The sign-in could not continue: ${message}. Start again from the application.`),
        );
      else res.end();
    });
    return true;
  };
}

async function answerInteraction(
  provider: Provider,
  path: string,
  action: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const client = await provider.Client.find(String(params.client_id));
  const clientName = String(client?.clientName ?? params.client_id);
  switch (action) {
    case 'show':
      if (prompt.name === 'login') {
        const loginHint = typeof params.login_hint === 'string' ? params.login_hint : undefined;
        return sendHtml(res, 200, loginPage({ action: `${path}/login`, abortAction: `${path}/abort`, clientName, loginHint }));
      }
      return sendHtml(
        res,
        200,
        consentPage({
          action: `${path}/consent`,
          abortAction: `${path}/abort`,
          clientName,
          accountId: String(details.session?.accountId ?? ''),
          scopes: String(params.scope ?? '')
            .split(' ')
            .filter(Boolean),
        }),
      );
    case 'login': {
      const login = new URLSearchParams(await readBody(req)).get('login')?.trim();
      if (prompt.name !== 'login' || !login || login.length > 100) {
        return sendHtml(res, 400, errorPage('Enter a user name of 1–100 characters.'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    }
    case 'consent': {
      if (prompt.name !== 'consent') return sendHtml(res, 400, errorPage('There is no consent to give at this step.'));
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session!.accountId, clientId: String(params.client_id) });
      if (!grant) return sendHtml(res, 400, errorPage('The grant being extended no longer exists.'));
      const missing = prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
        grant.addResourceScope(indicator, scopes.join(' '));
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    }
    default:
      // RFC 6749 §4.1.2.1: the resource owner denied the request.
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user denied the authorization at the sandbox.' },
        { mergeWithLastSubmission: false },
      );
  }
}

// ---- HTTP plumbing ----------------------------------------------------------------------------

function isUnder(url: string, basePath: string): boolean {
  return basePath === '' || url === basePath || url.startsWith(`${basePath}/`) || url.startsWith(`${basePath}?`);
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No script at all, and never in a frame: a consent page that can be framed can be clickjacked.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'",
    'x-frame-options': 'DENY',
  });
  res.end(html);
}

async function readBody(req: IncomingMessage, limit = 16 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error('the form is too large'), { statusCode: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  server.closeAllConnections();
  await closed;
}
