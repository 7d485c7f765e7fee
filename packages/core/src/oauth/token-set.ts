import type { Kind } from '../catalog/kinds.js';
import type { OAuth1Credential, PlacedCredential } from '../kinds/credential.js';

/** What the vault seals for an identity: the tokens and the provider's own response. */
export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  tokenType: string;
  /** Epoch ms, or null when the provider's tokens do not expire. */
  expiresAt: number | null;
  scope?: string;
  /** The provider's token response without refresh tokens. */
  native: Record<string, unknown>;
  /** The credential kind; absent means `oauth2` (rows stored before kinds existed). */
  kind?: Kind;
  /** The credential of the kinds that are not a bearer token (API keys, Basic, OAuth 1). */
  credential?: PlacedCredential | OAuth1Credential;
  /** What renewing needs besides a refresh token (the requested scope; a service account's key). */
  material?: Record<string, string>;
}

const REFRESH_TOKEN_KEYS = new Set(['refresh_token']);

/** A deep copy of the provider's response with every refresh token removed, at any depth. */
export function withoutRefreshTokens(value: unknown): Record<string, unknown> {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([k]) => !REFRESH_TOKEN_KEYS.has(k))
          .map(([k, inner]) => [k, strip(inner)]),
      );
    }
    return v;
  };
  return (strip(value) ?? {}) as Record<string, unknown>;
}

/** Reads `a.b.c` from a JSON value; undefined when any step is missing. */
export function readPath(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (!current || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
