/**
 * The authorization flow (RFC 6749 §4.1 with PKCE and, for OpenID providers, a nonce): begin
 * stores a session under the hash of `state` and returns the provider's URL; complete takes the
 * session once, checks the callback, exchanges the code, reads the profile and stores the identity.
 */
import type { Logger } from 'pino';
import type { AuthorizationCompleted, AuthorizationStarted, BeginAuthorization } from './broker.js';
import type { Credentials, SessionSecrets } from './credentials.js';
import { AuthorizationFailed, EveryAuthError, InvalidInput, NotFound } from './errors.js';
import type { Events } from './events.js';
import { toSummary } from './identity-rows.js';
import { newIdentityId, randomToken, sha256 } from './ids.js';
import * as oauth1 from './kinds/oauth1.js';
import {
  buildAuthorizationUrl,
  exchangeAuthorizationCode,
  isOpenIdFlow,
  readProfile,
  validateAuthorizationResponse,
  type ClientContext,
} from './oauth/engine.js';
import type { TokenSet } from './oauth/token-set.js';
import type { Services } from './services.js';
import type { AuthSessionRow, IdentityRow, ServiceRow, Store } from './store/store.js';
import * as validate from './validate.js';

export interface FlowOptions {
  /** Origins an absolute `finishedUrl` may point at, the broker's own included. */
  allowedOrigins: string[];
  /** How long a started authorization may take. */
  sessionTtlMs: number;
  now: () => number;
  logger: Logger;
}

/** The callback's context, carried on every AuthorizationFailed so the app can send the user somewhere. */
type FlowContext = { serviceId: string; userId: string; tenantId?: string; finishedUrl?: string };

export class Flow {
  private lastPrune = 0;

  constructor(
    private readonly store: Store,
    private readonly credentials: Credentials,
    private readonly services: Services,
    private readonly events: Events,
    private readonly options: FlowOptions,
  ) {}

  async begin(input: BeginAuthorization): Promise<AuthorizationStarted> {
    const target = input.reconnect ? await this.reconnectTarget(input) : undefined;
    const service = await this.services.row(validate.serviceId(target?.service_id ?? input.serviceId));
    const userId = target?.user_id ?? validate.userId(input.userId);
    const tenantId = target?.tenant_id ?? (input.tenantId === undefined ? '' : validate.tenantId(input.tenantId));
    const tags = target ? (JSON.parse(target.tags) as Record<string, string>) : validate.tags(input.tags);
    const finishedUrl = input.finishedUrl === undefined ? null : validate.finishedUrl(input.finishedUrl, this.options.allowedOrigins);
    const ctx = await this.services.context(service);
    const scopes = this.services.scopes(service, ctx.provider);

    const state = randomToken();
    const stateHash = sha256(state);
    const redirectUri = this.services.redirectUrl(service.id);
    const { url, secrets } = await this.start(ctx, service, { redirectUri, state, scopes });
    const now = this.options.now();
    this.pruneSessions(now);
    await this.store.insertSession({
      state_hash: stateHash,
      service_id: service.id,
      user_id: userId,
      tenant_id: tenantId,
      tags: JSON.stringify(tags),
      finished_url: finishedUrl,
      redirect_uri: redirectUri,
      secrets: this.credentials.sealSession(stateHash, secrets),
      browser_binding: input.browserBinding ? sha256(input.browserBinding) : null,
      identity_id: target?.id ?? null,
      allow_account_change: input.reconnect?.allowAccountChange ? 1 : 0,
      expires_at: now + this.options.sessionTtlMs,
      used_at: null,
      created_at: now,
    });
    return { url, state, expiresAt: new Date(now + this.options.sessionTtlMs).toISOString() };
  }

  async complete(
    serviceId: string,
    query: URLSearchParams | Record<string, unknown>,
    options: { browserBinding?: string } = {},
  ): Promise<AuthorizationCompleted> {
    const params = toSearchParams(query);
    const stateHash = sha256(checkState(params));
    const session = await this.takeSession(stateHash);
    const context: FlowContext = {
      serviceId: session.service_id,
      userId: session.user_id,
      tenantId: session.tenant_id || undefined,
      finishedUrl: session.finished_url ?? undefined,
    };
    try {
      checkSessionMatches(session, serviceId, options.browserBinding);
      const service = await this.services.row(session.service_id);
      const ctx = await this.services.context(service);
      const { tokens, profile } = await this.exchange(ctx, service, session, stateHash, params);
      const before = await this.priorIdentity(session, profile);
      const { row, created } = await this.storeIdentity(service, ctx, session, tokens, profile);
      // Back from needs_reauth or dead, or asked for as a reconnect: the same identity, reconnected.
      const reconnected = before !== undefined && (session.identity_id !== null || before.status !== 'active');
      await this.events.emit(created ? 'identity.created' : reconnected ? 'identity.reconnected' : 'identity.updated', row, {
        ...(reconnected ? { previousStatus: before.status } : {}),
      });
      return {
        identity: toSummary(row),
        finishedUrl: session.finished_url
          ? validate.withQuery(session.finished_url, { userId: session.user_id, tenantId: context.tenantId, serviceId: session.service_id })
          : undefined,
      };
    } catch (err) {
      throw this.failure(err, session, context);
    }
  }

  /** The identity a reconnect re-authorizes; the input may repeat its service, user and tenant but not name others. */
  private async reconnectTarget(input: BeginAuthorization): Promise<IdentityRow> {
    const id = validate.lookupId(input.reconnect!.identityId);
    const row = await this.store.getIdentity(id);
    if (!row) throw new NotFound('identity', id);
    const clash =
      (input.serviceId !== undefined && input.serviceId !== row.service_id && 'serviceId') ||
      (input.userId !== undefined && input.userId !== row.user_id && 'userId') ||
      (input.tenantId !== undefined && input.tenantId !== row.tenant_id && 'tenantId');
    if (clash) throw new InvalidInput(`A reconnect keeps the identity's ${clash}; leave it out or give the identity's own.`, clash);
    if (input.tags !== undefined)
      throw new InvalidInput("A reconnect keeps the identity's tags; change them with updateIdentity instead.", 'tags');
    return row;
  }

  /**
   * The identity this grant will land on, as it was. On a reconnect it must still exist and, unless
   * the caller allowed it, the grant must be for the same account at the provider: otherwise a user
   * signed in to another account would silently swap the data the app reads.
   */
  private async priorIdentity(session: AuthSessionRow, profile: { id?: string }): Promise<IdentityRow | undefined> {
    if (session.identity_id === null) {
      const rows = await this.store.findIdentities(
        { serviceId: session.service_id, userId: session.user_id, tenantId: session.tenant_id },
        1,
      );
      return rows[0];
    }
    const row = await this.store.getIdentity(session.identity_id);
    if (!row) throw new AuthorizationFailed('invalid_request', 'The identity being reconnected was deleted meanwhile; connect anew.');
    const stored = (JSON.parse(row.profile) as { id?: string }).id;
    if (!session.allow_account_change && stored !== undefined && profile.id !== undefined && String(stored) !== String(profile.id)) {
      throw new AuthorizationFailed(
        'account_mismatch',
        `The provider returned a different account (${profile.id}) than the one this identity holds (${stored}); sign in to the same account, or reconnect with allowAccountChange.`,
      );
    }
    return row;
  }

  /** Marks the session used, once; a state that is unknown, used or expired ends the callback here. */
  private async takeSession(stateHash: string): Promise<AuthSessionRow> {
    const taken = await this.store.takeSession(stateHash, this.options.now());
    if (taken.ok) return taken.session;
    const why = {
      unknown: 'is unknown: the link was forged or belongs to another EveryAuth',
      used: 'was already used: an authorization response can be completed once',
      expired: 'has expired: authorizations must finish within the session lifetime',
    }[taken.reason];
    throw new AuthorizationFailed('invalid_request', `The callback's "state" ${why}. Start the authorization again.`);
  }

  /** `finishedUrl` checked as begin checks it (a path, or an allowed origin); throws InvalidInput. */
  checkFinishedUrl(url: string): string {
    return validate.finishedUrl(url, this.options.allowedOrigins);
  }

  /** Where to send the user, and what to keep sealed until the callback, by the provider's kind. */
  private async start(
    ctx: ClientContext,
    service: ServiceRow,
    request: { redirectUri: string; state: string; scopes: string[] },
  ): Promise<{ url: string; secrets: SessionSecrets }> {
    if (ctx.provider.kind === 'oauth1') {
      // OAuth 1.0a has no state parameter: ours rides on the callback URL the provider confirms (RFC 5849 §2.1).
      const callback = validate.withQuery(request.redirectUri, { state: request.state });
      const consumer = this.services.consumer(service, ctx.provider);
      const requestToken = await oauth1.requestToken(ctx.provider, consumer, callback, ctx.timeoutMs);
      const url = oauth1.authorizationUrl(ctx.provider, requestToken, JSON.parse(service.params));
      return { url, secrets: { requestToken } };
    }
    const codeVerifier = randomToken();
    const nonce = isOpenIdFlow(ctx.provider, request.scopes) ? randomToken() : undefined;
    const url = await buildAuthorizationUrl(ctx, { ...request, params: JSON.parse(service.params), codeVerifier, nonce });
    return { url: url.href, secrets: { codeVerifier, nonce } };
  }

  /** Checks the response (RFC 9207 issuer, errors), then trades the code for tokens and reads the profile. */
  private async exchange(ctx: ClientContext, service: ServiceRow, session: AuthSessionRow, stateHash: string, params: URLSearchParams) {
    if (ctx.provider.kind === 'oauth1') {
      const secrets = this.credentials.openSession(stateHash, session.secrets);
      const consumer = this.services.consumer(service, ctx.provider);
      const tokens = await oauth1.accessToken(ctx.provider, consumer, secrets.requestToken!, params, ctx.timeoutMs);
      return { tokens, profile: await oauth1.readOAuth1Profile(ctx, tokens, JSON.parse(service.variables), this.services.apiAgents) };
    }
    const validated = validateAuthorizationResponse(ctx, params);
    if (!validated.get('code'))
      throw new AuthorizationFailed('invalid_request', 'The callback has no authorization "code" (RFC 6749 §4.1.2).');
    const secrets = this.credentials.openSession(stateHash, session.secrets);
    const { tokens, idTokenClaims } = await exchangeAuthorizationCode(
      ctx,
      validated,
      { redirectUri: session.redirect_uri, codeVerifier: secrets.codeVerifier ?? '', nonce: secrets.nonce },
      this.options.now,
    );
    return { tokens, profile: await readProfile(ctx, tokens, idTokenClaims) };
  }

  private storeIdentity(
    service: ServiceRow,
    ctx: ClientContext,
    session: AuthSessionRow,
    tokens: TokenSet,
    profile: unknown,
  ): Promise<{ row: IdentityRow; created: boolean }> {
    return this.store.upsertIdentity(
      {
        service_id: service.id,
        tenant_id: session.tenant_id,
        user_id: session.user_id,
        tags: JSON.parse(session.tags) as Record<string, string>,
        expires_at: tokens.expiresAt,
        scope: tokens.scope ?? this.services.scopes(service, ctx.provider).join(' '),
        profile: JSON.stringify(profile),
        sealTokens: (id) => this.credentials.sealTokens(id, tokens),
      },
      () => newIdentityId(this.options.now()),
      this.options.now(),
    );
  }

  /**
   * Any error once the session is known becomes an AuthorizationFailed carrying the flow's context
   * and its finishedUrl with `error` and `error_description` on it. An unexpected error's message
   * stays in the log.
   */
  private failure(err: unknown, session: AuthSessionRow, context: FlowContext): AuthorizationFailed {
    if (err instanceof AuthorizationFailed && err.context.finishedUrl) return err;
    const error = err instanceof AuthorizationFailed ? err.error : 'server_error';
    const description = err instanceof EveryAuthError ? err.message : 'The authorization could not be completed.';
    if (!(err instanceof EveryAuthError))
      this.options.logger.error({ err, serviceId: session.service_id }, 'authorization callback failed');
    return new AuthorizationFailed(error, description, {
      ...context,
      finishedUrl: session.finished_url
        ? validate.withQuery(session.finished_url, {
            error,
            error_description: description,
            serviceId: session.service_id,
            userId: session.user_id,
            tenantId: context.tenantId,
          })
        : undefined,
    });
  }

  /**
   * Deletes sessions expired for a day (the day keeps "expired" apart from "unknown" in callback
   * errors), at most every 10 minutes, off the request's path.
   */
  private pruneSessions(now: number): void {
    if (now - this.lastPrune < 10 * 60_000) return;
    this.lastPrune = now;
    this.store
      .pruneSessions(now - 24 * 3600_000)
      .catch((err: unknown) => this.options.logger.warn({ err }, 'pruning expired authorization sessions failed'));
  }
}

/** The callback's one `state` (RFC 6749 §10.12), refusing repeated parameters (§3.1). */
function checkState(params: URLSearchParams): string {
  const state = params.get('state');
  if (!state) {
    throw new AuthorizationFailed(
      'invalid_request',
      'The callback has no "state": it did not come from an authorization EveryAuth started (RFC 6749 §10.12).',
    );
  }
  if (params.getAll('state').length > 1 || params.getAll('code').length > 1) {
    throw new AuthorizationFailed(
      'invalid_request',
      'The callback repeats "state" or "code" (RFC 6749 §3.1: parameters must not be included more than once).',
    );
  }
  return state;
}

/** The callback must arrive for the service, and from the browser, that started the flow. */
function checkSessionMatches(session: AuthSessionRow, serviceId: string, browserBinding: string | undefined): void {
  if (session.service_id !== serviceId) {
    throw new AuthorizationFailed(
      'invalid_request',
      `The callback arrived for service "${serviceId}" but the authorization was started for another service (a mix-up, RFC 9700 §4.4).`,
    );
  }
  if (session.browser_binding !== null && (!browserBinding || sha256(browserBinding) !== session.browser_binding)) {
    throw new AuthorizationFailed(
      'invalid_request',
      'The callback came from a different browser than the one that started the authorization (RFC 9700 §4.7); start again from the same browser.',
    );
  }
}

function toSearchParams(query: URLSearchParams | Record<string, unknown>): URLSearchParams {
  if (query instanceof URLSearchParams) return query;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (typeof v === 'string') params.append(k, v);
    else if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
  }
  return params;
}
