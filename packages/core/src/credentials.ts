/**
 * An identity's secret material, and every other secret core keeps, as it is sealed and opened.
 *
 * Each sealed value is bound to the row it belongs to through the vault's associated data, so a
 * value copied into another row fails to open. The labels are built here and nowhere else:
 * refresh, the authorization flow, bundles, re-keying and the server's webhooks all use these.
 */
import type { RequestToken } from './kinds/oauth1.js';
import type { TokenSet } from './oauth/token-set.js';
import type { IdentityRow } from './store/store.js';
import { OpenedTokens } from './opened-tokens.js';
import type { Vault } from './vault.js';

/** The associated data each kind of sealed value is bound to. */
export const sealedLabel = {
  /** An identity's token set (`identities.tokens`). */
  identity: (identityId: string) => `identity:${identityId}`,
  /** A service's client secret (`services.client_secret`). */
  service: (serviceId: string) => `service:${serviceId}`,
  /** A started authorization's PKCE verifier and nonce (`auth_sessions.secrets`), by the hash of its state. */
  session: (stateHash: string) => `session:${stateHash}`,
  /** A webhook's signing secret (the server's `webhooks.secret`). */
  webhook: (webhookId: string) => `webhook:${webhookId}`,
} as const;

/**
 * What an authorization keeps secret until its callback: the PKCE verifier (RFC 7636) and the
 * OpenID nonce, or OAuth 1.0a's request token and its secret (RFC 5849 §2.1).
 */
export interface SessionSecrets {
  codeVerifier?: string;
  nonce?: string;
  requestToken?: RequestToken;
}

/** The stored form of a token set: short keys, as this JSON is parsed on every token read. */
interface SealedTokens {
  a: string;
  r?: string;
  i?: string;
  t: string;
  s?: string;
  n: Record<string, unknown>;
  /** Kind, credential and renewal material; absent on an OAuth 2 code-flow token set. */
  k?: TokenSet['kind'];
  c?: TokenSet['credential'];
  m?: TokenSet['material'];
  /** A non-Bearer Authorization scheme (the catalog's token.scheme). */
  h?: string;
}

/** Seals and opens the secrets of identities, services and authorization sessions with one vault. */
export class Credentials {
  /** Token sets already opened, by identity: a token read of an unchanged row skips decrypting it. */
  readonly #opened = new OpenedTokens<SealedTokens>();

  constructor(readonly vault: Vault) {}

  sealTokens(identityId: string, t: TokenSet): string {
    const sealed: SealedTokens = {
      a: t.accessToken,
      r: t.refreshToken,
      i: t.idToken,
      t: t.tokenType,
      s: t.scope,
      n: t.native,
      k: t.kind,
      c: t.credential,
      m: t.material,
      h: t.scheme,
    };
    return this.vault.seal(JSON.stringify(sealed), sealedLabel.identity(identityId));
  }

  /** The token set of a row; the expiry comes from the row, where refresh and listings read it unsealed. */
  openTokens(row: Pick<IdentityRow, 'id' | 'tokens' | 'expires_at'>): TokenSet {
    const s =
      this.#opened.get(row.id, row.tokens) ??
      this.#opened.set(row.id, row.tokens, JSON.parse(this.vault.open(row.tokens, sealedLabel.identity(row.id))) as SealedTokens);
    return {
      accessToken: s.a,
      refreshToken: s.r,
      idToken: s.i,
      tokenType: s.t,
      scope: s.s,
      expiresAt: row.expires_at,
      native: s.n,
      kind: s.k,
      credential: s.c,
      material: s.m,
      scheme: s.h,
    };
  }

  sealClientSecret(serviceId: string, secret: string): string {
    return this.vault.seal(secret, sealedLabel.service(serviceId));
  }

  openClientSecret(serviceId: string, sealed: string): string {
    return this.vault.open(sealed, sealedLabel.service(serviceId));
  }

  sealSession(stateHash: string, secrets: SessionSecrets): string {
    return this.vault.seal(JSON.stringify(secrets), sealedLabel.session(stateHash));
  }

  openSession(stateHash: string, sealed: string): SessionSecrets {
    return JSON.parse(this.vault.open(sealed, sealedLabel.session(stateHash))) as SessionSecrets;
  }
}
