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
  it('keeps an identity read twice, and opens a changed row again', () => {
    const { credentials, open } = setUp();
    const first = credentials.sealTokens('idn_a', tokens('one'));
    for (let i = 0; i < 4; i++) expect(credentials.openTokens(row('idn_a', first)).accessToken).toBe('one');
    // The first read only marks the identity (a value read once is not worth keeping); the second keeps it.
    expect(open).toHaveBeenCalledTimes(2);

    // A refresh writes a new sealed text: the next read opens it, and the one after does not.
    const second = credentials.sealTokens('idn_a', tokens('two'));
    expect(credentials.openTokens(row('idn_a', second)).accessToken).toBe('two');
    expect(credentials.openTokens(row('idn_a', second)).accessToken).toBe('two');
    expect(open).toHaveBeenCalledTimes(3);
  });

  it('keeps nothing of a sweep that reads each identity once', () => {
    const { credentials, open } = setUp();
    const sealed = Array.from({ length: 100 }, (_, i) => credentials.sealTokens(`idn_${i}`, tokens(`t${i}`)));
    sealed.forEach((s, i) => credentials.openTokens(row(`idn_${i}`, s)));
    // Read once more, each is opened again (and kept from now on).
    sealed.forEach((s, i) => credentials.openTokens(row(`idn_${i}`, s)));
    expect(open).toHaveBeenCalledTimes(200);
    sealed.forEach((s, i) => credentials.openTokens(row(`idn_${i}`, s)));
    expect(open).toHaveBeenCalledTimes(200);
  });

  it('still refuses a sealed value copied into another row after it was opened for its own', () => {
    const { credentials } = setUp();
    const sealed = credentials.sealTokens('idn_a', tokens('one'));
    for (let i = 0; i < 2; i++) expect(credentials.openTokens(row('idn_a', sealed)).accessToken).toBe('one');
    expect(() => credentials.openTokens(row('idn_b', sealed))).toThrow(DecryptionFailed);
  });

  it('gives every reader values no earlier reader could change', () => {
    const { credentials } = setUp();
    const sealed = credentials.sealTokens('idn_a', tokens('one'));
    credentials.openTokens(row('idn_a', sealed));
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
    const count = 2 * 4_096;
    const sealed = Array.from({ length: count }, (_, i) => credentials.sealTokens(`idn_${i}`, tokens(`t${i}`)));
    // Each read twice in a row, so each is kept in turn.
    sealed.forEach((s, i) => {
      credentials.openTokens(row(`idn_${i}`, s));
      credentials.openTokens(row(`idn_${i}`, s));
    });
    const opened = open.mock.calls.length;
    credentials.openTokens(row(`idn_${count - 1}`, sealed[count - 1]!));
    expect(open).toHaveBeenCalledTimes(opened);
    credentials.openTokens(row('idn_0', sealed[0]!));
    expect(open).toHaveBeenCalledTimes(opened + 1);
  });
});
