import { describe, expect, it, vi } from 'vitest';
import { Credentials } from '../src/credentials.js';
import { DecryptionFailed } from '../src/errors.js';
import type { TokenSet } from '../src/oauth/token-set.js';
import { createKeyRing, Vault } from '../src/vault.js';

const tokens = (accessToken: string): TokenSet => ({
  accessToken,
  refreshToken: `r-${accessToken}`,
  tokenType: 'bearer',
  scope: 'repo',
  native: { scope: 'repo', nested: { team: 'a' } },
});

/** Credentials over a fresh vault, counting how often the vault really decrypts. */
function setUp() {
  const vault = Vault.fromKeyRing(createKeyRing());
  const open = vi.spyOn(vault, 'open');
  return { credentials: new Credentials(vault), open };
}

const row = (id: string, sealed: string) => ({ id, tokens: sealed, expires_at: null });

describe('opened token sets', () => {
  it('opens an unchanged row once, and a changed one again', () => {
    const { credentials, open } = setUp();
    const first = credentials.sealTokens('idn_a', tokens('one'));
    expect(credentials.openTokens(row('idn_a', first)).accessToken).toBe('one');
    expect(credentials.openTokens(row('idn_a', first)).accessToken).toBe('one');
    expect(open).toHaveBeenCalledTimes(1);

    // A refresh writes a new sealed text: the next read opens it.
    const second = credentials.sealTokens('idn_a', tokens('two'));
    expect(credentials.openTokens(row('idn_a', second)).accessToken).toBe('two');
    expect(open).toHaveBeenCalledTimes(2);
  });

  it('still refuses a sealed value copied into another row after it was opened for its own', () => {
    const { credentials } = setUp();
    const sealed = credentials.sealTokens('idn_a', tokens('one'));
    expect(credentials.openTokens(row('idn_a', sealed)).accessToken).toBe('one');
    expect(() => credentials.openTokens(row('idn_b', sealed))).toThrow(DecryptionFailed);
  });

  it('gives every reader values no earlier reader could change', () => {
    const { credentials } = setUp();
    const sealed = credentials.sealTokens('idn_a', tokens('one'));
    const read = credentials.openTokens(row('idn_a', sealed));
    expect(() => {
      (read.native.nested as Record<string, string>).team = 'changed';
    }).toThrow(TypeError);
    read.accessToken = 'changed';
    const again = credentials.openTokens(row('idn_a', sealed));
    expect(again.accessToken).toBe('one');
    expect(again.native).toEqual({ scope: 'repo', nested: { team: 'a' } });
  });

  it('keeps a bounded number of identities, dropping the oldest first', () => {
    const { credentials, open } = setUp();
    const sealed = Array.from({ length: 4_097 }, (_, i) => credentials.sealTokens(`idn_${i}`, tokens(`t${i}`)));
    sealed.forEach((s, i) => credentials.openTokens(row(`idn_${i}`, s)));
    expect(open).toHaveBeenCalledTimes(4_097);
    credentials.openTokens(row('idn_4096', sealed[4_096]!));
    expect(open).toHaveBeenCalledTimes(4_097);
    credentials.openTokens(row('idn_0', sealed[0]!));
    expect(open).toHaveBeenCalledTimes(4_098);
  });
});
