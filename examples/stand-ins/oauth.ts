/**
 * The OAuth 2.0 half of the local stand-ins for Asana and Google: @everyauth/oauth-server (the
 * real oidc-provider, the same server as EveryAuth's sandbox and the tests') at the provider's
 * endpoint paths, with a sign-in page a browser (or a test) can click through. Each stand-in
 * supplies what differs: paths, the token response's extra fields, when a refresh token is issued.
 * Used only by tests and the examples' demo mode.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Request, type Response } from 'express';
import { createAuthorizationServer, listenOnLoopback, type AuthorizationServer } from '@everyauth/oauth-server';

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

/** What an access token carries: whose it is and for what. */
export interface AccessRecord {
  account: Account;
  scope: string[];
}

export interface OAuthFlavour {
  /** Shown on the sign-in page. */
  name: string;
  /** Paths of the endpoints. */
  paths: { authorize: string; token: string; revoke: string };
  accessTokenTtlSeconds: number;
  /** Whether the response to the authorization request carries `iss` (RFC 9207). */
  sendsIss: boolean;
  /** Scopes accepted besides openid, email and profile. */
  scopes: string[];
  /** Whether this authorization's code exchange gets a refresh token (Google's rules differ from Asana's). */
  issuesRefreshToken(params: Record<string, unknown>, firstConsent: boolean): boolean;
  /** The token response: oidc-provider's standard fields, reshaped as the provider sends them. */
  tokenResponse(body: Record<string, unknown>, record: AccessRecord): Record<string, unknown>;
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

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The authorization server of one stand-in, and the sign-in page in front of it. */
export class OAuthStandIn {
  /** Token requests by grant type, so tests can see refreshes happen. */
  readonly tokenRequests: Record<string, number> = {};
  readonly #accounts = new Map<string, Account>();
  /** Accounts that consented to a client before: Google only sends a refresh token on the first consent. */
  readonly #consented = new Set<string>();
  /** Per grant, whether its code exchange gets a refresh token: decided at consent, used once. */
  readonly #refreshFor = new Map<string, boolean>();
  readonly #clients: StandInClient[];
  #server: AuthorizationServer | undefined;

  constructor(
    readonly flavour: OAuthFlavour,
    clients: StandInClient[] = [],
  ) {
    this.#clients = [...clients];
  }

  get issuer(): string {
    return this.#started().issuer;
  }

  /** Registers a client (client_secret_post, as both providers take it), or replaces one with the same id. */
  async addClient(client: StandInClient): Promise<void> {
    await this.#started().addClient({
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: client.redirectUris,
      token_endpoint_auth_method: 'client_secret_post',
    });
  }

  /** How many refresh tokens are live, across accounts and clients. */
  countRefreshTokens(): number {
    return this.#started().countRefreshTokens();
  }

  /** The access token's grant, if it is live: what API routes call to authenticate a request. */
  authenticate(req: Request): Promise<AccessRecord | undefined> {
    const match = /^Bearer (.+)$/i.exec(req.get('authorization') ?? '');
    return match ? this.#accessRecord(match[1]!) : Promise.resolve(undefined);
  }

  async #accessRecord(accessToken: string): Promise<AccessRecord | undefined> {
    const token = await this.#started().provider.AccessToken.find(accessToken);
    const account = token && !token.isExpired ? this.#accounts.get(token.accountId) : undefined;
    return account && { account, scope: (token!.scope ?? '').split(' ').filter(Boolean) };
  }

  /** The sign-in page's routes; register them before the API's. */
  routes(app: Express): void {
    app.get('/interaction/:uid', (req, res, next) => this.#showSignIn(req, res).catch(next));
    app.post('/interaction/:uid', express.urlencoded({ extended: false }), (req, res, next) => this.#decide(req, res).catch(next));
  }

  /** Serves `app`, then oidc-provider for everything else, on 127.0.0.1 (a free port unless told one). */
  async listen(app: Express, port?: number): Promise<{ url: string; close(): Promise<void> }> {
    const target: { server?: AuthorizationServer } = {};
    app.use((req: IncomingMessage, res: ServerResponse) => (target.server ? target.server.handle(req, res) : res.end()));
    const listener = await listenOnLoopback(app, port);
    const server = await createAuthorizationServer(this.#options(listener.origin)).catch(async (err: unknown) => {
      await listener.close();
      throw err;
    });
    target.server = this.#server = server;
    server.provider.use((ctx, next) => this.#reshape(ctx, next));
    for (const client of this.#clients) await this.addClient(client);
    return {
      url: server.issuer,
      close: async () => {
        await server.close();
        await listener.close();
      },
    };
  }

  #options(issuer: string) {
    const { paths } = this.flavour;
    return {
      issuer,
      accessTokenTtl: this.flavour.accessTokenTtlSeconds,
      // Neither provider rotates refresh tokens (the catalog's refreshTokenRotates: false).
      rotateRefreshTokens: false,
      apiScopes: this.flavour.scopes,
      accountClaims: (id: string) => {
        const account = this.#accounts.get(id);
        return { sub: id, ...(account && { email: account.email, email_verified: true, name: account.name }) };
      },
      configuration: {
        routes: { authorization: paths.authorize, token: paths.token, revocation: paths.revoke },
        extraParams: ['access_type'],
        // Every authorization shows the sign-in page, as the stand-ins always have: only the grant
        // just consented to on it counts, never an earlier one of the same account.
        loadExistingGrant: async (ctx: any) => {
          const grantId = ctx.oidc.result?.consent?.grantId as string | undefined;
          return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
        },
        issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(grant: string): boolean }, code: { grantId: string }) => {
          const issue = this.#refreshFor.get(code.grantId) ?? false;
          this.#refreshFor.delete(code.grantId);
          return issue && client.grantTypeAllowed('refresh_token');
        },
      },
    };
  }

  /** Counts token requests, reshapes token responses as the provider sends them, and drops `iss` where the provider does not send it. */
  async #reshape(ctx: any, next: () => Promise<void>): Promise<void> {
    await next();
    const route = ctx.oidc?.route as string | undefined;
    if (route === 'token') {
      const grantType = String(ctx.oidc.params?.grant_type ?? '(none)');
      this.tokenRequests[grantType] = (this.tokenRequests[grantType] ?? 0) + 1;
      const body = ctx.body as Record<string, unknown> | undefined;
      if (ctx.status === 200 && typeof body?.access_token === 'string') {
        const record = await this.#accessRecord(body.access_token);
        if (record) ctx.body = this.flavour.tokenResponse(body, record);
      }
    } else if (!this.flavour.sendsIss && (route === 'resume' || route === 'authorization') && ctx.status >= 300 && ctx.status < 400) {
      // Only the redirect back to the client carries iss; the one to the sign-in page is relative.
      const location = new URL(ctx.response.get('location'), this.issuer);
      if (location.searchParams.has('iss')) {
        location.searchParams.delete('iss');
        ctx.response.set('location', location.href);
      }
    }
  }

  async #showSignIn(req: Request, res: Response): Promise<void> {
    const { params } = await this.#started().provider.interactionDetails(req, res);
    const scopes = String(params.scope ?? '')
      .split(' ')
      .filter(Boolean);
    res.type('html').send(
      this.page(
        `Sign in to ${this.flavour.name}`,
        `<form method="post" action="${escapeHtml(req.path)}">
  <label>Email <input name="login_email" type="email" value="demo@example.com" required></label>
  <label>Name <input name="login_name" value="Demo User"></label>
  <p><strong>${escapeHtml(String(params.client_id))}</strong> asks to:</p>
  <ul>${(scopes.length ? scopes : ['(default access)']).map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>
  <button name="decision" value="allow" id="allow">Allow</button>
  <button name="decision" value="deny" id="deny" formnovalidate>Deny</button>
</form>`,
      ),
    );
  }

  async #decide(req: Request, res: Response): Promise<void> {
    const { provider } = this.#started();
    const { params } = await provider.interactionDetails(req, res);
    const form = req.body as Record<string, string>;
    if (form.decision !== 'allow') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user denied access to the application.' },
        { mergeWithLastSubmission: false },
      );
    }
    const account = accountFor(form.login_email || 'demo@example.com', form.login_name);
    this.#accounts.set(account.id, account);
    const clientId = String(params.client_id);
    const grant = new provider.Grant({ accountId: account.id, clientId });
    if (params.scope) grant.addOIDCScope(String(params.scope));
    const grantId = await grant.save();
    const consentKey = `${clientId}:${account.id}`;
    this.#refreshFor.set(grantId, this.flavour.issuesRefreshToken(params, !this.#consented.has(consentKey)));
    this.#consented.add(consentKey);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.id }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  #started(): AuthorizationServer {
    if (!this.#server) throw new Error(`The ${this.flavour.name} stand-in is not listening yet.`);
    return this.#server;
  }

  page(title: string, body: string): string {
    return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:2rem;border:1px solid #ddd;border-radius:12px}
label{display:block;margin:.5rem 0}input{width:100%;padding:.4rem}button{padding:.5rem 1.5rem;margin-right:.5rem}
.banner{font-size:.8rem;color:#a00}</style></head>
<body><p class="banner">Local stand-in for ${escapeHtml(this.flavour.name)}: not the real service.</p><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  }
}
