import * as oauth from 'oauth4webapi';
import { RefreshFailure, classifyProviderFailure, tokenCall, toTokenSet, type ClientContext } from '../oauth/engine.js';
import type { TokenSet } from '../oauth/token-set.js';

/** The user id of a client-credentials identity: the token belongs to the service (per tenant), not a user. */
export const APP_USER_ID = 'app';

/**
 * A token for the client itself (RFC 6749 §4.4), through oauth4webapi. Obtained on first use and
 * obtained again before expiry instead of a refresh (§4.4.3: no refresh token is issued), under
 * the same single-flight and lease rules. Throws RefreshFailure, classified like a refresh.
 */
export async function clientCredentialsGrant(ctx: ClientContext, scope: string, now: () => number): Promise<TokenSet> {
  const call = tokenCall(ctx);
  try {
    const parameters = new URLSearchParams(scope ? { scope } : {});
    const response = await oauth.clientCredentialsGrantRequest(ctx.as, ctx.client, ctx.auth, parameters, call.options);
    const result = await oauth.processClientCredentialsResponse(ctx.as, ctx.client, response);
    const tokens = toTokenSet(ctx, result, call.raw(), now());
    return { ...tokens, refreshToken: undefined, kind: 'oauth2_client_credentials', material: { scope } };
  } catch (err) {
    throw new RefreshFailure(classifyProviderFailure(err));
  }
}
