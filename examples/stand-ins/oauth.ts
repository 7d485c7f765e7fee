/**
 * The OAuth 2.0 half of the local stand-ins for Asana and Google: an authorization page a browser
 * (or a test) can click through, a token endpoint with PKCE, refresh and revocation, ID tokens
 * signed RS256. Each stand-in supplies what differs: paths, the token response's extra fields, when
 * a refresh token is issued. Used only by tests and the examples' demo mode.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import express, { type Express, type Request, type Response } from 'express';

export interface StandInClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

export interface Account {
  /** Stable id derived from the email, like the providers' numeric ids. */
  id: string;
  email: string;
  name: string;
}

/** An authorization the user consented to: what the code, then the tokens, carry. */
export interface Grant {
  clientId: string;
  account: Account;
  scope: string[];
  /** The authorization request's own parameters (access_type, prompt, …). */
  params: Record<string, string>;
}

interface CodeRecord extends Grant {
  redirectUri: string;
  codeChallenge?: string;
  nonce?: string;
  expiresAt: number;
}

export interface AccessRecord extends Grant {
  expiresAt: number;
}

export interface OAuthFlavour {
  /** Shown on the consent page. */
  name: string;
  /** Paths of the endpoints. */
  paths: { authorize: string; token: string; revoke: string };
  accessTokenTtlSeconds: number;
  /** Whether the response to the authorization request carries `iss` (RFC 9207). */
  sendsIss: boolean;
  /** Whether this code exchange gets a refresh token (Google's rules differ from Asana's). */
  issuesRefreshToken(grant: Grant, firstConsent: boolean): boolean;
  /** The token response: the standard fields, plus what the provider adds. */
  tokenResponse(base: Record<string, unknown>, grant: Grant): Record<string, unknown>;
  /** The `token_type` spelling of the provider. */
  tokenType: string;
}

export const accountFor = (email: string, name?: string): Account => ({
  id: BigInt(`0x${createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 12)}`).toString(),
  email: email.toLowerCase(),
  name:
    name?.trim() ||
    email
      .split('@')[0]!
      .replace(/[._-]+/g, ' ')
      .replace(/\b\w/g, (c) => c.toUpperCase()),
});

const token = (prefix: string) => `${prefix}${randomBytes(24).toString('base64url')}`;
const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The OAuth server state and routes of one stand-in. */
export class OAuthStandIn {
  readonly clients = new Map<string, StandInClient>();
  readonly accessTokens = new Map<string, AccessRecord>();
  readonly refreshTokens = new Map<string, Grant>();
  /** Token requests by grant type, so tests can see refreshes happen. */
  readonly tokenRequests: Record<string, number> = {};
  private readonly codes = new Map<string, CodeRecord>();
  /** Accounts that consented to a client before: Google only sends a refresh token on the first consent. */
  private readonly consented = new Set<string>();
  private readonly key: KeyObject;
  readonly kid = randomBytes(6).toString('hex');
  issuer = '';

  constructor(
    readonly flavour: OAuthFlavour,
    clients: StandInClient[] = [],
  ) {
    for (const c of clients) this.clients.set(c.clientId, c);
    this.key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  }

  addClient(client: StandInClient): void {
    this.clients.set(client.clientId, client);
  }

  /** The access token's grant, if it is live: what API routes call to authenticate a request. */
  authenticate(req: Request): AccessRecord | undefined {
    const match = /^Bearer (.+)$/i.exec(req.get('authorization') ?? '');
    const record = match ? this.accessTokens.get(match[1]!) : undefined;
    if (!record || record.expiresAt < Date.now()) return undefined;
    return record;
  }

  routes(app: Express): void {
    const { paths } = this.flavour;
    app.get(paths.authorize, (req, res) => this.showConsent(req, res));
    app.post(paths.authorize, express.urlencoded({ extended: false }), (req, res) => this.decide(req, res));
    app.post(paths.token, express.urlencoded({ extended: false }), (req, res) => this.token(req, res));
    app.post(paths.revoke, express.urlencoded({ extended: false }), (req, res) => this.revoke(req, res));
  }

  // ---- authorization request (RFC 6749 §4.1.1) ----

  private showConsent(req: Request, res: Response): void {
    const q = req.query as Record<string, string>;
    const client = this.clients.get(q.client_id ?? '');
    // §4.1.2.1: with a bad client or redirect URI the user is told, never redirected.
    if (!client)
      return void res
        .status(400)
        .type('html')
        .send(this.page('Unknown client', `<p>No application with client_id "${escapeHtml(q.client_id ?? '')}" is registered.</p>`));
    if (!client.redirectUris.includes(q.redirect_uri ?? '')) {
      return void res
        .status(400)
        .type('html')
        .send(
          this.page(
            'Redirect URI mismatch',
            `<p>The redirect_uri "${escapeHtml(q.redirect_uri ?? '')}" is not registered for this application.</p>`,
          ),
        );
    }
    if (q.response_type !== 'code') return this.redirectError(res, q, 'unsupported_response_type', 'Only response_type=code is supported.');
    if (q.code_challenge && q.code_challenge_method !== 'S256')
      return this.redirectError(res, q, 'invalid_request', 'code_challenge_method must be S256.');
    const hidden = Object.entries(q)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(String(v))}">`)
      .join('');
    const scopes = (q.scope ?? '').split(/\s+/).filter(Boolean);
    res.type('html').send(
      this.page(
        `Sign in to ${this.flavour.name}`,
        `<form method="post" action="${escapeHtml(this.flavour.paths.authorize)}">${hidden}
  <label>Email <input name="login_email" type="email" value="demo@example.com" required></label>
  <label>Name <input name="login_name" value="Demo User"></label>
  <p><strong>${escapeHtml(client.clientId)}</strong> asks to:</p>
  <ul>${(scopes.length ? scopes : ['(default access)']).map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>
  <button name="decision" value="allow" id="allow">Allow</button>
  <button name="decision" value="deny" id="deny" formnovalidate>Deny</button>
</form>`,
      ),
    );
  }

  private decide(req: Request, res: Response): void {
    const q = req.body as Record<string, string>;
    const client = this.clients.get(q.client_id ?? '');
    if (!client || !client.redirectUris.includes(q.redirect_uri ?? ''))
      return void res.status(400).type('text').send('invalid client or redirect_uri');
    if (q.decision !== 'allow') return this.redirectError(res, q, 'access_denied', 'The user denied access to the application.');
    const account = accountFor(q.login_email || 'demo@example.com', q.login_name);
    const { login_email: _e, login_name: _n, decision: _d, ...params } = q;
    const code = token('code_');
    this.codes.set(code, {
      clientId: client.clientId,
      account,
      scope: (q.scope ?? '').split(/\s+/).filter(Boolean),
      params,
      redirectUri: q.redirect_uri!,
      codeChallenge: q.code_challenge,
      nonce: q.nonce,
      expiresAt: Date.now() + 60_000,
    });
    const target = new URL(q.redirect_uri!);
    target.searchParams.set('code', code);
    if (q.state !== undefined) target.searchParams.set('state', q.state);
    if (this.flavour.sendsIss) target.searchParams.set('iss', this.issuer);
    res.redirect(302, target.href);
  }

  private redirectError(res: Response, q: Record<string, string>, error: string, description: string): void {
    const target = new URL(q.redirect_uri!);
    target.searchParams.set('error', error);
    target.searchParams.set('error_description', description);
    if (q.state !== undefined) target.searchParams.set('state', q.state);
    if (this.flavour.sendsIss) target.searchParams.set('iss', this.issuer);
    res.redirect(302, target.href);
  }

  // ---- token endpoint (RFC 6749 §4.1.3, §6) ----

  private authenticateClient(req: Request): StandInClient | undefined {
    const body = req.body as Record<string, string>;
    let id = body.client_id;
    let secret = body.client_secret;
    const basic = /^Basic (.+)$/i.exec(req.get('authorization') ?? '');
    if (basic) {
      const [u, p] = Buffer.from(basic[1]!, 'base64').toString().split(':');
      id = decodeURIComponent(u ?? '');
      secret = decodeURIComponent(p ?? '');
    }
    const client = this.clients.get(id ?? '');
    return client && secret !== undefined && safeEqual(client.clientSecret, secret) ? client : undefined;
  }

  private token(req: Request, res: Response): void {
    const body = req.body as Record<string, string>;
    const grantType = body.grant_type ?? '(none)';
    this.tokenRequests[grantType] = (this.tokenRequests[grantType] ?? 0) + 1;
    res.set('cache-control', 'no-store');
    const fail = (status: number, error: string, description: string) =>
      void res.status(status).json({ error, error_description: description });
    const client = this.authenticateClient(req);
    if (!client) return fail(401, 'invalid_client', 'Client authentication failed.');
    if (grantType === 'authorization_code') {
      const record = this.codes.get(body.code ?? '');
      this.codes.delete(body.code ?? '');
      if (!record || record.expiresAt < Date.now() || record.clientId !== client.clientId)
        return fail(400, 'invalid_grant', 'The authorization code is invalid or expired.');
      if (record.redirectUri !== body.redirect_uri)
        return fail(400, 'invalid_grant', 'redirect_uri does not match the authorization request.');
      if (record.codeChallenge) {
        const computed = createHash('sha256')
          .update(body.code_verifier ?? '')
          .digest('base64url');
        if (!body.code_verifier || computed !== record.codeChallenge) return fail(400, 'invalid_grant', 'PKCE verification failed.');
      }
      const consentKey = `${client.clientId}:${record.account.id}`;
      const first = !this.consented.has(consentKey);
      this.consented.add(consentKey);
      return void res.json(this.issue(record, { refresh: this.flavour.issuesRefreshToken(record, first), nonce: record.nonce }));
    }
    if (grantType === 'refresh_token') {
      const grant = this.refreshTokens.get(body.refresh_token ?? '');
      if (!grant || grant.clientId !== client.clientId) return fail(400, 'invalid_grant', 'The refresh token is invalid or revoked.');
      return void res.json(this.issue(grant, { refresh: false }));
    }
    fail(400, 'unsupported_grant_type', `grant_type ${grantType} is not supported.`);
  }

  private issue(grant: Grant, options: { refresh: boolean; nonce?: string }): Record<string, unknown> {
    const accessToken = token('at_');
    const ttl = this.flavour.accessTokenTtlSeconds;
    this.accessTokens.set(accessToken, { ...grant, expiresAt: Date.now() + ttl * 1000 });
    const base: Record<string, unknown> = { access_token: accessToken, token_type: this.flavour.tokenType, expires_in: ttl };
    if (options.refresh) {
      const refreshToken = token('rt_');
      this.refreshTokens.set(refreshToken, { clientId: grant.clientId, account: grant.account, scope: grant.scope, params: grant.params });
      base.refresh_token = refreshToken;
    }
    if (grant.scope.includes('openid')) base.id_token = this.idToken(grant, options.nonce);
    return this.flavour.tokenResponse(base, grant);
  }

  /** An OpenID Connect ID token (RS256), with the claims the scopes allow. */
  idToken(grant: Grant, nonce?: string): string {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { iss: this.issuer, aud: grant.clientId, sub: grant.account.id, iat: now, exp: now + 3600 };
    if (nonce) claims.nonce = nonce;
    if (grant.scope.includes('email')) Object.assign(claims, { email: grant.account.email, email_verified: true });
    if (grant.scope.includes('profile')) claims.name = grant.account.name;
    const signingInput = `${b64url({ alg: 'RS256', typ: 'JWT', kid: this.kid })}.${b64url(claims)}`;
    return `${signingInput}.${sign('sha256', Buffer.from(signingInput), this.key).toString('base64url')}`;
  }

  // ---- revocation (RFC 7009) ----

  private revoke(req: Request, res: Response): void {
    const value = (req.body as Record<string, string>).token ?? String(req.query.token ?? '');
    const grant = this.refreshTokens.get(value) ?? this.accessTokens.get(value);
    if (grant) {
      // Revoking either token ends the grant, as both providers do.
      for (const [k, g] of this.refreshTokens)
        if (g.account.id === grant.account.id && g.clientId === grant.clientId) this.refreshTokens.delete(k);
      for (const [k, g] of this.accessTokens)
        if (g.account.id === grant.account.id && g.clientId === grant.clientId) this.accessTokens.delete(k);
    }
    res.status(200).end();
  }

  page(title: string, body: string): string {
    return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:2rem;border:1px solid #ddd;border-radius:12px}
label{display:block;margin:.5rem 0}input{width:100%;padding:.4rem}button{padding:.5rem 1.5rem;margin-right:.5rem}
.banner{font-size:.8rem;color:#a00}</style></head>
<body><p class="banner">Local stand-in for ${escapeHtml(this.flavour.name)}: not the real service.</p><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  }
}

/** Listens on a free 127.0.0.1 port unless told one; the URL is the stand-in's base URL and issuer. */
export function listenOn(app: Express, port = 0, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      resolve({
        url: `http://${host}:${actual}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
    server.on('error', reject);
  });
}
