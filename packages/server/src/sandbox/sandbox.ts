/**
 * The built-in `sandbox` provider: the local authorization server of @everyauth/oauth-server
 * (oidc-provider) on the same machine, so a new user can authorize, watch a token refresh and
 * revoke it with no third-party account and no network.
 *
 * It is mounted inside the EveryAuth server under the issuer's path (`createSandbox` +
 * `sandboxRoutes`), or runs on its own loopback port (`startSandbox`, for tests and scripts).
 */
import type { ProviderInput } from '@everyauth/core';
import { createAuthorizationServer, startAuthorizationServer, type AuthorizationServer } from '@everyauth/oauth-server';

export interface SandboxOptions {
  /** The issuer URL; its path is where the sandbox is mounted (e.g. `http://localhost:3000/_sandbox`). */
  issuer: string;
  /** Access token lifetime in seconds (default 300). */
  accessTokenTtl?: number;
  /** Refresh token lifetime in seconds (default 14 days). */
  refreshTokenTtl?: number;
  /** Whether each refresh returns a new refresh token and retires the old one (default true). */
  rotateRefreshTokens?: boolean;
  /** A JSON file keeping grants, tokens and keys across restarts; in memory only when absent. */
  stateFile?: string;
}

export interface Sandbox extends Pick<AuthorizationServer, 'issuer' | 'basePath' | 'handle' | 'revokeGrantsFor' | 'close'> {
  /** Registers a confidential client (code + refresh_token grants, client_secret_basic), or replaces one with the same id. */
  ensureClient(clientId: string, clientSecret: string, redirectUris: string[]): Promise<void>;
  /** The catalog entry EveryAuth uses for this sandbox, under the given provider id. */
  providerDefinition(id?: string): ProviderInput;
}

/** The provider id and display name the server registers the sandbox under. */
export const SANDBOX_PROVIDER_ID = 'sandbox';
export const SANDBOX_SCOPES = ['openid', 'profile', 'email'];

export { accountClaims } from '@everyauth/oauth-server';

/** The sandbox at `options.issuer`, for the server to mount (see `sandboxRoutes`). */
export async function createSandbox(options: SandboxOptions): Promise<Sandbox> {
  return asSandbox(await createAuthorizationServer(options), options);
}

/** A sandbox on its own loopback port (default: a free one), owning the whole origin. */
export async function startSandbox(options: Omit<SandboxOptions, 'issuer'> & { port?: number } = {}): Promise<Sandbox> {
  return asSandbox(await startAuthorizationServer(options), options);
}

function asSandbox(server: AuthorizationServer, options: Omit<SandboxOptions, 'issuer'>): Sandbox {
  const { issuer, provider } = server;
  return {
    issuer,
    basePath: server.basePath,
    handle: server.handle,
    revokeGrantsFor: server.revokeGrantsFor,
    close: server.close,
    ensureClient: (clientId, clientSecret, redirectUris) =>
      server.addClient({ client_id: clientId, client_secret: clientSecret, client_name: 'EveryAuth', redirect_uris: redirectUris }),
    providerDefinition: (id = SANDBOX_PROVIDER_ID) => ({
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
    }),
  };
}
