import * as oauth from 'oauth4webapi';
import { AuthorizationFailed, InvalidInput, ProviderError, ProviderUnavailable, ReauthorizationRequired } from '../errors.js';
import type { Provider } from '../catalog/schema.js';
import type { Profile } from '../broker.js';
import { readPath, withoutRefreshTokens, type TokenSet } from './token-set.js';

/** Everything one protocol step needs about one service. Build with `clientContext`. */
export interface ClientContext {
  /** The provider with its template variables already substituted. */
  provider: Provider;
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  auth: oauth.ClientAuth;
  /** Per-request timeout for calls to the provider. */
  timeoutMs: number;
  /** Plain http only to loopback hosts: local development and tests. */
  allowInsecure: boolean;
}

export function clientContext(provider: Provider, clientId: string, clientSecret: string | undefined, timeoutMs: number): ClientContext {
  const as: oauth.AuthorizationServer = {
    // oauth4webapi needs an issuer; a provider that is not an OpenID / RFC 8414 issuer gets its
    // authorization URL's origin, which no `iss` it sends can match by accident.
    issuer: provider.issuer ?? new URL(provider.authorizationUrl ?? provider.tokenUrl ?? provider.docs).origin,
    authorization_endpoint: provider.authorizationUrl,
    token_endpoint: provider.tokenUrl,
    revocation_endpoint: provider.revocationUrl,
    userinfo_endpoint: provider.userinfoUrl,
    authorization_response_iss_parameter_supported: provider.authorizationResponseIss,
  };
  const auth =
    clientSecret === undefined
      ? oauth.None()
      : provider.clientAuth === 'client_secret_post'
        ? oauth.ClientSecretPost(clientSecret)
        : oauth.ClientSecretBasic(clientSecret);
  const urls = [
    provider.authorizationUrl,
    provider.tokenUrl,
    provider.refreshUrl,
    provider.revocationUrl,
    provider.userinfoUrl,
    provider.profile?.url,
  ];
  const allowInsecure = urls.every((u) => u === undefined || u.startsWith('https:') || isLoopback(u));
  return { provider, as, client: { client_id: clientId }, auth, timeoutMs, allowInsecure };
}

function isLoopback(url: string): boolean {
  const { hostname } = new URL(url);
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

// ---- authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3) ----

export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  scopes: string[];
  params: Record<string, string>;
  codeVerifier: string;
  nonce?: string;
}

export async function buildAuthorizationUrl(ctx: ClientContext, request: AuthorizationRequest): Promise<URL> {
  const { provider } = ctx;
  if (provider.kind !== 'oauth2' || !provider.authorizationUrl) {
    throw new InvalidInput(`Provider "${provider.id}" is of kind "${provider.kind}", which has no authorization redirect.`, 'serviceId');
  }
  const url = new URL(provider.authorizationUrl);
  // Extra parameters first, so none of them can replace a protocol parameter set below.
  for (const [k, v] of Object.entries({ ...provider.authorizationParams, ...request.params })) url.searchParams.set(k, v);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', ctx.client.client_id);
  url.searchParams.set('redirect_uri', request.redirectUri);
  if (request.scopes.length > 0) url.searchParams.set(provider.scopes.param ?? 'scope', request.scopes.join(provider.scopes.separator));
  url.searchParams.set('state', request.state);
  if (provider.pkce) {
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(request.codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
  }
  if (request.nonce) url.searchParams.set('nonce', request.nonce);
  return url;
}

/** Whether the flow is OpenID Connect: an ID token will come back, and the nonce must be checked. */
export function isOpenIdFlow(provider: Provider, scopes: string[]): boolean {
  return provider.issuer !== undefined && scopes.includes('openid');
}

// ---- authorization response (RFC 6749 §4.1.2, RFC 9207) ----

/**
 * Checks the callback's parameters: an error from the provider, the `iss` of RFC 9207, a code.
 * The state itself was already matched to a session by the caller.
 */
export function validateAuthorizationResponse(ctx: ClientContext, params: URLSearchParams): URLSearchParams {
  try {
    return oauth.validateAuthResponse(ctx.as, ctx.client, params, oauth.skipStateCheck);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) {
      throw new AuthorizationFailed(err.error, err.error_description ?? `The provider refused the authorization (${err.error}).`);
    }
    if (issuerRefused(err, ctx, params)) {
      throw new AuthorizationFailed(
        'invalid_request',
        `The authorization response's issuer does not match provider "${ctx.provider.id}" (RFC 9207 §2.4): ${err.message}.`,
      );
    }
    throw new AuthorizationFailed('invalid_request', `The authorization response is malformed: ${(err as Error).message}.`);
  }
}

/**
 * Whether oauth4webapi refused the response for its `iss` (RFC 9207 §2.4), told by the error's code
 * and cause rather than its wording: a wrong issuer comes as INVALID_RESPONSE with `cause.expected`
 * (the issuer it wanted), a missing one as INVALID_RESPONSE from a server that advertises
 * `authorization_response_iss_parameter_supported`, on a response without `iss`.
 */
function issuerRefused(err: unknown, ctx: ClientContext, params: URLSearchParams): err is oauth.OperationProcessingError {
  if (!(err instanceof oauth.OperationProcessingError) || err.code !== oauth.INVALID_RESPONSE) return false;
  const cause = err.cause as { expected?: unknown } | undefined;
  if (cause?.expected !== undefined) return cause.expected === ctx.as.issuer && params.get('iss') !== ctx.as.issuer;
  return !params.get('iss') && !params.has('response') && ctx.as.authorization_response_iss_parameter_supported === true;
}

// ---- token requests (RFC 6749 §4.1.3, §6) ----

export interface TokenCall {
  options: oauth.TokenEndpointRequestOptions;
  /** The provider's response body as it came, before normalisation. */
  raw: () => Record<string, unknown> | undefined;
}

/**
 * Request options for one token request. The custom fetch adds the timeout and normalises
 * provider quirks into RFC 6749 §5.1 shape before oauth4webapi validates the response: a token
 * nested in the body (Slack's authed_user), errors sent with status 200 (`ok: false`), token types
 * other than bearer.
 */
export function tokenCall(ctx: ClientContext): TokenCall {
  let raw: Record<string, unknown> | undefined;
  const { provider } = ctx;
  const additionalParameters = Object.keys(provider.tokenParams).length ? provider.tokenParams : undefined;
  const options: oauth.TokenEndpointRequestOptions = {
    additionalParameters,
    signal: AbortSignal.timeout(ctx.timeoutMs),
    [oauth.allowInsecureRequests]: ctx.allowInsecure,
    [oauth.customFetch]: async (url, init) => {
      const response = await fetch(url, init);
      if (!(response.headers.get('content-type') ?? '').includes('json')) return response;
      const text = await readAtMost(response, MAX_TOKEN_RESPONSE_BYTES);
      if (text === undefined) {
        return new Response(`a token response larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`, {
          status: response.status,
          headers: { 'content-type': 'text/plain' },
        });
      }
      const body = parseJson(text) as Record<string, unknown> | undefined;
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        return new Response('not a JSON object', { status: response.status, headers: { 'content-type': 'text/plain' } });
      }
      raw = body;
      const { status, normalised } = normaliseTokenBody(provider, response.status, body);
      return new Response(JSON.stringify(normalised), { status, headers: response.headers });
    },
  };
  return { options, raw: () => raw };
}

/**
 * Token responses are a few kilobytes. The raw response is kept with the tokens and decrypted on
 * every token read, so a provider answering megabytes is refused rather than stored.
 */
const MAX_TOKEN_RESPONSE_BYTES = 256 * 1024;

/** The body as text, or undefined (and the rest left unread) once it passes `max` bytes. */
async function readAtMost(response: Response, max: number): Promise<string | undefined> {
  if (Number(response.headers.get('content-length') ?? 0) > max) {
    await response.body?.cancel();
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > max) return undefined; // leaving the loop early cancels the stream
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function normaliseTokenBody(provider: Provider, status: number, body: Record<string, unknown>) {
  if (body.ok === false && typeof body.error === 'string') {
    return { status: status === 200 ? 400 : status, normalised: { error: body.error } };
  }
  if (status !== 200) return { status, normalised: body };
  let tokens: Record<string, unknown> = body;
  if (provider.token.path) {
    const nested = readPath(body, provider.token.path);
    tokens = nested && typeof nested === 'object' ? { ...(nested as Record<string, unknown>) } : {};
  } else {
    tokens = { ...body };
  }
  if (typeof tokens.token_type !== 'string' || tokens.token_type.toLowerCase() === provider.token.type.toLowerCase()) {
    tokens.token_type = 'bearer';
  }
  // An ID token from a provider without a known issuer cannot be validated; it stays in `native` only.
  if (!provider.issuer) delete tokens.id_token;
  return { status, normalised: tokens };
}

export function toTokenSet(
  ctx: ClientContext,
  result: oauth.TokenEndpointResponse,
  raw: Record<string, unknown> | undefined,
  now: number,
): TokenSet {
  const expiresIn = typeof result.expires_in === 'number' ? result.expires_in : undefined;
  return {
    accessToken: result.access_token,
    refreshToken: result.refresh_token,
    idToken: result.id_token,
    tokenType: result.token_type,
    expiresAt: expiresIn !== undefined && ctx.provider.token.expires ? now + expiresIn * 1000 : null,
    scope: typeof result.scope === 'string' ? result.scope : undefined,
    native: withoutRefreshTokens(raw ?? result),
  };
}

export interface CodeExchange {
  redirectUri: string;
  codeVerifier: string;
  nonce?: string;
}

/** Exchanges the authorization code (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5). */
export async function exchangeAuthorizationCode(
  ctx: ClientContext,
  callbackParams: URLSearchParams,
  exchange: CodeExchange,
  now: () => number,
): Promise<{ tokens: TokenSet; idTokenClaims?: oauth.IDToken }> {
  const call = tokenCall(ctx);
  let result: oauth.TokenEndpointResponse;
  try {
    const response = await oauth.authorizationCodeGrantRequest(
      ctx.as,
      ctx.client,
      ctx.auth,
      callbackParams,
      exchange.redirectUri,
      ctx.provider.pkce ? exchange.codeVerifier : oauth.nopkce,
      call.options,
    );
    result = await oauth.processAuthorizationCodeResponse(ctx.as, ctx.client, response, {
      expectedNonce: exchange.nonce ?? oauth.expectNoNonce,
      requireIdToken: exchange.nonce !== undefined,
    });
  } catch (err) {
    const failure = classifyProviderFailure(err);
    throw new AuthorizationFailed(
      failure.kind === 'rejected' || failure.kind === 'invalid_grant' ? failure.error : 'temporarily_unavailable',
      `The code exchange with provider "${ctx.provider.id}" failed: ${failure.detail}.`,
    );
  }
  return { tokens: toTokenSet(ctx, result, call.raw(), now()), idTokenClaims: oauth.getValidatedIdTokenClaims(result) };
}

/** Refreshes the access token (RFC 6749 §6). Throws a classified error; never returns a partial set. */
export async function refreshTokenGrant(ctx: ClientContext, refreshToken: string, now: () => number): Promise<TokenSet> {
  const call = tokenCall(ctx);
  try {
    // Some providers (Figma) refresh at an endpoint of their own.
    const as = ctx.provider.refreshUrl ? { ...ctx.as, token_endpoint: ctx.provider.refreshUrl } : ctx.as;
    const response = await oauth.refreshTokenGrantRequest(as, ctx.client, ctx.auth, refreshToken, call.options);
    const result = await oauth.processRefreshTokenResponse(ctx.as, ctx.client, response);
    return toTokenSet(ctx, result, call.raw(), now());
  } catch (err) {
    throw new RefreshFailure(classifyProviderFailure(err));
  }
}

export type ProviderFailure =
  | { kind: 'invalid_grant'; error: 'invalid_grant'; detail: string }
  | { kind: 'retryable'; error: string; detail: string; retryAfterMs?: number }
  | { kind: 'rejected'; error: string; detail: string };

/** Sorts a failed provider call into: the grant is gone, try again later, or a hard error. */
export function classifyProviderFailure(err: unknown): ProviderFailure {
  if (err instanceof oauth.ResponseBodyError) {
    const detail = `HTTP ${err.status}, ${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
    if (err.error === 'invalid_grant') return { kind: 'invalid_grant', error: 'invalid_grant', detail };
    if (err.status >= 500 || err.status === 429 || err.error === 'temporarily_unavailable') {
      return { kind: 'retryable', error: err.error, detail, retryAfterMs: retryAfter(err.response) };
    }
    return { kind: 'rejected', error: err.error, detail };
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    // A 401 with a challenge: the client's own credentials were refused (RFC 6749 §5.2 invalid_client).
    const error = err.cause[0]?.parameters.error ?? 'invalid_client';
    const detail = `HTTP ${err.status}, ${error}`;
    if (err.status >= 500 || err.status === 429) return { kind: 'retryable', error, detail, retryAfterMs: retryAfter(err.response) };
    return { kind: 'rejected', error, detail };
  }
  if (err instanceof oauth.OperationProcessingError && err.cause instanceof Response) {
    const status = err.cause.status;
    const detail = `HTTP ${status}`;
    if (status >= 500 || status === 429) return { kind: 'retryable', error: 'server_error', detail, retryAfterMs: retryAfter(err.cause) };
    return { kind: 'rejected', error: 'invalid_response', detail: `${detail}, ${err.message}` };
  }
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
    // oauth4webapi attaches the response body as the cause; it may hold tokens, so only the message is kept.
    return { kind: 'rejected', error: 'invalid_response', detail: err.message };
  }
  const e = err as Error & { cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return { kind: 'retryable', error: 'timeout', detail: 'timed out' };
  if (e instanceof TypeError) return { kind: 'retryable', error: 'network_error', detail: e.cause?.code ?? e.message };
  return { kind: 'rejected', error: 'invalid_response', detail: e?.message ?? String(err) };
}

function retryAfter(response: Response | undefined): number | undefined {
  const value = response?.headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** A refresh failure as the error the caller sees; ReauthorizationRequired is filled in by the broker. */
export class RefreshFailure extends Error {
  constructor(readonly failure: ProviderFailure) {
    super(failure.detail);
  }
}

export function toBrokerError(
  ctx: ClientContext,
  failure: ProviderFailure,
  identity: { serviceId: string; id: string; userId: string; tenantId?: string },
) {
  switch (failure.kind) {
    case 'invalid_grant':
      return new ReauthorizationRequired(identity.serviceId, identity.id, identity.userId, identity.tenantId);
    case 'retryable':
      return new ProviderUnavailable(ctx.provider.id, failure.detail);
    case 'rejected':
      return new ProviderError(ctx.provider.id, failure.error, failure.detail);
  }
}

// ---- revocation (RFC 7009) ----

export async function revokeToken(ctx: ClientContext, token: string, hint: 'refresh_token' | 'access_token'): Promise<void> {
  if (!ctx.provider.revocationUrl) return;
  const response = await oauth.revocationRequest(ctx.as, ctx.client, ctx.auth, token, {
    additionalParameters: { token_type_hint: hint },
    signal: AbortSignal.timeout(ctx.timeoutMs),
    [oauth.allowInsecureRequests]: ctx.allowInsecure,
  });
  try {
    await oauth.processRevocationResponse(response);
  } catch (err) {
    const failure = classifyProviderFailure(err);
    throw toBrokerError(ctx, failure, { serviceId: '', id: '', userId: '' });
  }
}

// ---- the account's profile ----

/** Reads the account's id, name and email where the catalog says they are. */
export async function readProfile(ctx: ClientContext, tokens: TokenSet, idTokenClaims: oauth.IDToken | undefined): Promise<Profile> {
  const spec = ctx.provider.profile;
  let source: unknown;
  if (!spec) {
    source = idTokenClaims ?? {};
    return pickProfile(source, { id: 'sub', name: 'name', email: 'email' });
  }
  switch (spec.source) {
    case 'id_token':
      source = idTokenClaims ?? {};
      break;
    case 'token_response':
      source = tokens.native;
      break;
    case 'userinfo':
      source = await fetchJson(ctx, ctx.provider.userinfoUrl!, tokens.accessToken);
      break;
    case 'url':
      source = await fetchJson(ctx, spec.url!, tokens.accessToken);
      break;
  }
  return pickProfile(source, spec);
}

function pickProfile(source: unknown, paths: { id: string; name?: string; email?: string }): Profile {
  const text = (path: string | undefined) => {
    const v = path ? readPath(source, path) : undefined;
    return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
  };
  const profile: Profile = {};
  const id = text(paths.id);
  const name = text(paths.name);
  const email = text(paths.email);
  if (id !== undefined) profile.id = id;
  if (name !== undefined) profile.name = name;
  if (email !== undefined) profile.email = email;
  return profile;
}

async function fetchJson(ctx: ClientContext, url: string, accessToken: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
  } catch (err) {
    throw new AuthorizationFailed(
      'temporarily_unavailable',
      `Could not read the account's profile from provider "${ctx.provider.id}": ${(err as Error).message}.`,
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new AuthorizationFailed(
      'temporarily_unavailable',
      `Could not read the account's profile from provider "${ctx.provider.id}": HTTP ${response.status}.`,
    );
  }
  try {
    return await response.json();
  } catch {
    throw new AuthorizationFailed(
      'invalid_response',
      `Provider "${ctx.provider.id}" answered the profile request with something other than JSON.`,
    );
  }
}

export { oauth };
