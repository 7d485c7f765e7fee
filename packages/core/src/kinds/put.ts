import type { Profile, PutIdentity } from '../broker.js';
import { resolveApiUrls } from '../catalog/index.js';
import { CredentialRefused, InvalidInput, ProviderUnavailable } from '../errors.js';
import { RefreshFailure, readProfile, refreshTokenGrant, type ClientContext } from '../oauth/engine.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { ApiAgents } from '../proxy/agents.js';
import { placeCredential, testAgent, testCredential } from './api-key.js';
import { publicFields, readFields } from './fields.js';
import { APP_USER_ID, clientCredentialsGrant } from './client-credentials.js';
import { jwtGrant } from './jwt.js';
import { importedToken, readOAuth1Profile, type Consumer } from './oauth1.js';

/** What a checked credential becomes: the token set to seal and the account's profile. */
export interface CheckedCredential {
  tokens: TokenSet;
  profile: Profile;
}

/**
 * Turns typed-in values or imported tokens into a token set, after the provider accepted them:
 * the declared test request (`api_key`, `basic`), a first grant (`jwt`), a refresh or a profile
 * read (imported OAuth 2 tokens). Nothing here writes; a refusal throws and nothing is stored.
 */
export async function checkCredential(
  ctx: ClientContext,
  input: PutIdentity,
  service: { variables: Record<string, string>; scopes: string[]; consumer?: Consumer },
  agents: ApiAgents,
  now: () => number,
): Promise<CheckedCredential> {
  const { provider } = ctx;
  switch (provider.kind) {
    case 'api_key':
    case 'basic': {
      const fields = readFields(provider, input.fields);
      const shown = publicFields(provider, fields);
      const resolved = resolveApiUrls(provider, { ...service.variables, ...shown });
      const credential = placeCredential(resolved, fields);
      const agent = testAgent(agents, provider, service.variables, shown);
      const profile = await testCredential(resolved, credential, fields, { agent, timeoutMs: ctx.timeoutMs });
      return { tokens: { accessToken: '', tokenType: 'none', expiresAt: null, native: shown, kind: provider.kind, credential }, profile };
    }
    case 'jwt': {
      const material = jwtMaterial(ctx, readFields(provider, input.fields), service.scopes);
      const tokens = await asRefusal(ctx, jwtGrant(ctx, material, now));
      const profile = provider.jwt?.flavor === 'github_app' ? { id: material.installationId } : { id: clientEmail(material) };
      return { tokens, profile };
    }
    case 'oauth2':
      return importTokens(ctx, input, now);
    case 'oauth2_client_credentials':
      return tenantClient(ctx, input, service.scopes, now);
    case 'oauth1': {
      const tokens = importedToken(provider, service.consumer!, input.tokens?.accessToken, input.tokens?.tokenSecret);
      return { tokens, profile: await readOAuth1Profile(ctx, tokens, service.variables, agents) };
    }
    default:
      throw new InvalidInput(
        `Provider "${provider.id}" (kind ${provider.kind}) is connected through its authorization flow, not by putting values.`,
        'serviceId',
      );
  }
}

/**
 * A tenant's own client credentials, where the provider issues a client per tenant: proven by a
 * first grant, then sealed with the tenant's identity and used for its renewals. Without them the
 * service's own client serves every tenant on first use, and nothing is put.
 */
async function tenantClient(ctx: ClientContext, input: PutIdentity, scopes: string[], now: () => number): Promise<CheckedCredential> {
  const { clientId, clientSecret, ...rest } = input.fields ?? {};
  if (!clientId || !clientSecret || Object.keys(rest).length > 0) {
    throw new InvalidInput(
      `Service "${input.serviceId}" uses client credentials: its token is fetched on first use; put only a tenant's own client, as fields clientId and clientSecret.`,
      'fields',
    );
  }
  if (input.userId !== APP_USER_ID) {
    throw new InvalidInput(
      `A client-credentials identity belongs to the app: its userId is "${APP_USER_ID}"; name the tenant with tenantId.`,
      'userId',
    );
  }
  const scope = scopes.join(ctx.provider.scopes.separator);
  const tokens = await asRefusal(ctx, clientCredentialsGrant(ctx, scope, now, { clientId, clientSecret }));
  return { tokens, profile: { id: clientId } };
}

/** Imported OAuth 2 tokens are proven by a refresh when there is a refresh token, else by reading the profile. */
async function importTokens(ctx: ClientContext, input: PutIdentity, now: () => number): Promise<CheckedCredential> {
  const given = input.tokens;
  if (!given || (!given.accessToken && !given.refreshToken)) {
    throw new InvalidInput('Importing an OAuth 2 identity needs tokens: an accessToken, a refreshToken, or both.', 'tokens');
  }
  if (input.fields !== undefined) throw new InvalidInput(`Provider "${ctx.provider.id}" takes tokens, not fields.`, 'fields');
  const expiresAt = given.expiresAt === undefined ? null : Date.parse(given.expiresAt);
  if (Number.isNaN(expiresAt)) throw new InvalidInput('tokens.expiresAt must be an ISO date-time.', 'tokens.expiresAt');
  if (given.refreshToken) {
    const fresh = await asRefusal(ctx, refreshTokenGrant(ctx, given.refreshToken, now));
    const tokens = { ...fresh, refreshToken: fresh.refreshToken ?? given.refreshToken, scope: fresh.scope ?? given.scope };
    return { tokens, profile: await profileOrNothing(ctx, tokens) };
  }
  const scheme = ctx.provider.token.scheme === 'Bearer' ? {} : { scheme: ctx.provider.token.scheme };
  const tokens: TokenSet = { accessToken: given.accessToken!, tokenType: 'bearer', expiresAt, scope: given.scope, native: {}, ...scheme };
  const source = ctx.provider.profile?.source;
  if (source !== 'userinfo' && source !== 'url') {
    throw new InvalidInput(
      `Provider "${ctx.provider.id}" has no profile endpoint to check an access token against; import its refresh token too.`,
      'tokens.refreshToken',
    );
  }
  return { tokens, profile: await asRefusal(ctx, readProfile(ctx, tokens, undefined)) };
}

async function profileOrNothing(ctx: ClientContext, tokens: TokenSet): Promise<Profile> {
  const source = ctx.provider.profile?.source;
  return source === 'userinfo' || source === 'url' ? readProfile(ctx, tokens, undefined) : {};
}

/** A provider's "no" to a credential being put is the caller's problem (400), its outage a 503. */
async function asRefusal<T>(ctx: ClientContext, pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (err) {
    if (!(err instanceof RefreshFailure)) throw err;
    if (err.failure.kind === 'retryable') throw new ProviderUnavailable(ctx.provider.id, err.failure.detail);
    throw new CredentialRefused(ctx.provider.id, err.failure.detail, 400);
  }
}

/** What a service account's grant needs, from the form; the key is checked for shape here and by the provider on the first grant. */
function jwtMaterial(ctx: ClientContext, fields: Record<string, string>, scopes: string[]): Record<string, string> {
  if (ctx.provider.jwt?.flavor === 'github_app') {
    const { appId = '', privateKey = '', installationId = '' } = fields;
    return { appId, privateKey, installationId };
  }
  let account: Record<string, unknown>;
  try {
    account = JSON.parse(fields.serviceAccount ?? '') as Record<string, unknown>;
  } catch {
    throw new InvalidInput('serviceAccount must be the service account key file, as JSON.', 'fields.serviceAccount');
  }
  if (account.type !== 'service_account' || typeof account.client_email !== 'string' || typeof account.private_key !== 'string') {
    throw new InvalidInput(
      'serviceAccount must be a key file of type "service_account" with client_email and private_key.',
      'fields.serviceAccount',
    );
  }
  // The assertion is only ever sent to the catalog's token URL, whatever the key file names.
  if (account.token_uri !== undefined && account.token_uri !== ctx.provider.tokenUrl) {
    throw new InvalidInput(
      `The key file's token_uri is not ${ctx.provider.tokenUrl}; it belongs to another provider.`,
      'fields.serviceAccount',
    );
  }
  return { serviceAccount: fields.serviceAccount!, scope: scopes.join(' '), ...(fields.subject ? { subject: fields.subject } : {}) };
}

const clientEmail = (material: Record<string, string>) =>
  (JSON.parse(material.serviceAccount ?? '{}') as { client_email?: string }).client_email;
