import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';
import type { LocalBroker } from '@everyauth/core';

/** A pino logger at the most verbose level, writing into memory so a test can read every line it wrote. */
export interface CapturedLogs {
  logger: Logger;
  lines: string[];
  text(): string;
}

export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), lines, text: () => lines.join('') };
}

/** Asserts that none of the secrets appears in the haystack, naming which one did if it does. */
export function expectNoSecrets(haystack: string, secrets: Iterable<string | undefined>): void {
  for (const secret of secrets) {
    if (!secret || secret.length < 8) continue;
    expect(haystack.includes(secret), `a secret (${secret.slice(0, 4)}…) leaked`).toBe(false);
  }
}

/** The tokens the vault holds for an identity (tests only). */
export async function storedTokens(broker: LocalBroker, identityId: string): Promise<{ access: string; refresh?: string }> {
  const row = await broker.store.getIdentity(identityId);
  const sealed = JSON.parse(broker.vault.open(row!.tokens, `identity:${row!.id}`)) as { a: string; r?: string };
  return { access: sealed.a, refresh: sealed.r };
}

/** Every identity row, for "nothing stored / nothing changed" checks. */
export async function allIdentityRows(broker: LocalBroker) {
  return broker.store.db.selectFrom('identities').selectAll().orderBy('id').execute();
}

/** The outcome of a promise as a value: the error it threw, or undefined when it resolved. */
export const failureOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (err: unknown) => err,
  );
