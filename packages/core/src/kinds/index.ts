/**
 * Credential kinds. Each kind has one module saying how its credential is obtained (a redirect
 * flow, a form, a grant), how it is renewed, and how it is applied to a request
 * (`credential.ts`). This module picks the kind's renewal for the refresher.
 */
import { refreshTokenGrant, type ClientContext } from '../oauth/engine.js';
import type { TokenSet } from '../oauth/token-set.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { jwtGrant } from './jwt.js';

export * from './credential.js';
export { APP_USER_ID, clientCredentialsGrant } from './client-credentials.js';

/** Whether the identity can get a new access token without the user: a refresh token, or a grant of its own. */
export function isRenewable(tokens: TokenSet): boolean {
  return tokens.refreshToken !== undefined || tokens.kind === 'oauth2_client_credentials' || tokens.kind === 'jwt';
}

/** A new token set for a renewable identity; kind and material carry over. Throws RefreshFailure. */
export async function renewTokens(ctx: ClientContext, tokens: TokenSet, now: () => number): Promise<TokenSet> {
  switch (tokens.kind) {
    case 'oauth2_client_credentials':
      return clientCredentialsGrant(ctx, tokens.material?.scope ?? '', now);
    case 'jwt':
      return jwtGrant(ctx, tokens.material ?? {}, now);
    default:
      return refreshTokenGrant(ctx, tokens.refreshToken!, now);
  }
}
export {
  FORM_CSRF_FIELD,
  formPageHeaders,
  isFormKind,
  newFormCsrf,
  postedFields,
  renderCredentialForm,
  sameCsrf,
  type CredentialForm,
} from './form-page.js';
