import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { resolveApiUrls } from '../catalog/index.js';
import {
  RefreshFailure,
  classifyProviderFailure,
  tokenCall,
  toTokenSet,
  type ClientContext,
  type ProviderFailure,
} from '../oauth/engine.js';
import type { TokenSet } from '../oauth/token-set.js';

/** RFC 7523 §2.1 */
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The assertion authenticates the client itself (RFC 7523 §3.1); no client_id or secret goes with it. */
const noClientAuth: oauth.ClientAuth = () => undefined;

/**
 * A service-account access token: Google's JWT bearer grant (RFC 7523) or a GitHub App
 * installation token. `material` is what the user supplied on connect (see `jwtMaterial`).
 * Renewal is the same call again: neither issues a refresh token. Throws RefreshFailure.
 */
export async function jwtGrant(ctx: ClientContext, material: Record<string, string>, now: () => number): Promise<TokenSet> {
  const flavor = ctx.provider.jwt?.flavor;
  const tokens = flavor === 'github_app' ? await githubInstallationToken(ctx, material, now) : await googleJwtBearer(ctx, material, now);
  return { ...tokens, refreshToken: undefined, kind: 'jwt', material };
}

async function googleJwtBearer(ctx: ClientContext, material: Record<string, string>, now: () => number): Promise<TokenSet> {
  const account = JSON.parse(material.serviceAccount ?? '{}') as { client_email: string; private_key: string; private_key_id?: string };
  const tokenUrl = ctx.provider.tokenUrl!;
  const iat = Math.floor(now() / 1000);
  // Google: iss is the service account's email, aud the token URL, at most one hour (RFC 7523 §3).
  const assertion = await new SignJWT({ scope: material.scope ?? '', ...(material.subject ? { sub: material.subject } : {}) })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(account.private_key_id ? { kid: account.private_key_id } : {}) })
    .setIssuer(account.client_email)
    .setAudience(tokenUrl)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (ctx.provider.jwt?.assertionTtl ?? 3600))
    .sign(createPrivateKey(account.private_key));
  const call = tokenCall(ctx);
  try {
    const { additionalParameters: _none, ...options } = call.options;
    // oauth4webapi wants a client id; the service account is the client here, and noClientAuth sends nothing of it.
    const client = { client_id: account.client_email };
    const response = await oauth.genericTokenEndpointRequest(ctx.as, client, noClientAuth, JWT_BEARER, { assertion }, options);
    const result = await oauth.processGenericTokenEndpointResponse(ctx.as, client, response);
    return toTokenSet(ctx, result, call.raw(), now());
  } catch (err) {
    throw new RefreshFailure(classifyProviderFailure(err));
  }
}

/**
 * GitHub: an app JWT (iss = the App's id, at most 10 minutes, iat 60 s in the past for clock
 * drift) buys an installation token that lasts one hour.
 */
async function githubInstallationToken(ctx: ClientContext, material: Record<string, string>, now: () => number): Promise<TokenSet> {
  const iat = Math.floor(now() / 1000) - 60;
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(material.appId ?? '')
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.min(ctx.provider.jwt?.assertionTtl ?? 600, 600))
    // node:crypto reads GitHub's PKCS#1 keys as well as PKCS#8.
    .sign(createPrivateKey(material.privateKey ?? ''));
  const url = resolveApiUrls(ctx.provider, { installationId: material.installationId ?? '' }).jwt!.installationTokenUrl!;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
      signal: AbortSignal.timeout(ctx.timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    throw new RefreshFailure(classifyProviderFailure(err));
  }
  const body = (await response.json().catch(() => ({}))) as { token?: string; expires_at?: string; message?: string };
  if (!response.ok || typeof body.token !== 'string') throw new RefreshFailure(githubFailure(response.status, body.message));
  const { token, ...native } = body;
  return { accessToken: token, tokenType: 'bearer', expiresAt: body.expires_at ? Date.parse(body.expires_at) : null, native };
}

/** An installation that is gone (404) or suspended (403) needs the user again; a bad key is the app's error. */
function githubFailure(status: number, message = ''): ProviderFailure {
  const detail = `HTTP ${status}${message ? `, ${message}` : ''}`;
  if (status >= 500 || status === 429) return { kind: 'retryable', error: 'server_error', detail };
  if (status === 404 || status === 403) return { kind: 'invalid_grant', error: 'invalid_grant', detail };
  return { kind: 'rejected', error: status === 401 ? 'invalid_client' : 'invalid_response', detail };
}
