/**
 * The set-up the token benchmarks share: service `github` on a stand-in provider, and `count`
 * identities (user-0 …) with tokens valid for a day, unless `options` say otherwise.
 */
import type { Broker, Store, Vault } from '@everyauth/core';

export interface SeedOptions {
  /** The provider's token endpoint (default an unreachable https://idp.example/token). */
  tokenUrl?: string;
  /** Identity i's token expiry (default a day from now). */
  expiresAt?: (i: number) => number;
  /** When the tokens were written (default now); with `expiresAt`, sets the token's lifetime. */
  updatedAt?: number;
}

export async function seedTokenBench(broker: Broker, store: Store, vault: Vault, count: number, options: SeedOptions = {}): Promise<void> {
  await broker.putProvider({
    id: 'bench-idp',
    name: 'Bench IdP',
    docs: 'https://idp.example/docs',
    authorizationUrl: 'https://idp.example/authorize',
    tokenUrl: options.tokenUrl ?? 'https://idp.example/token',
  });
  await broker.putService({ id: 'github', providerId: 'bench-idp', clientId: 'bench-client', clientSecret: 'bench-secret' });

  const now = Date.now();
  const rows = Array.from({ length: count }, (_, i) => {
    const id = `idn_bench${String(i).padStart(8, '0')}`;
    return {
      id,
      service_id: 'github',
      tenant_id: '',
      user_id: `user-${i}`,
      status: 'active' as const,
      tokens: vault.seal(
        JSON.stringify({ a: `gho_${i}_${'x'.repeat(36)}`, r: `ghr_${i}`, t: 'bearer', n: { scope: 'repo', token_type: 'bearer' } }),
        `identity:${id}`,
      ),
      expires_at: options.expiresAt?.(i) ?? now + 24 * 3600_000,
      scope: 'repo',
      profile: JSON.stringify({ id: String(i), name: `User ${i}` }),
      tags: '{}',
      version: 1,
      lease_owner: null,
      lease_until: null,
      last_refresh_at: null,
      created_at: options.updatedAt ?? now,
      updated_at: options.updatedAt ?? now,
    };
  });
  for (let i = 0; i < rows.length; i += 500)
    await store.db
      .insertInto('identities')
      .values(rows.slice(i, i + 500))
      .execute();
}
