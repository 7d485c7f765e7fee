import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationFailed, InvalidInput, NotFound, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { LOCAL_CLIENT, STORES, startTestBroker, type TestBroker } from '../support/broker.js';
import { allIdentityRows, captureLogs, type CapturedLogs } from './support.js';

/**
 * Property-based fuzzing of the two doors a stranger can knock on: the callback (any query the
 * provider, or anyone, can send) and the broker's inputs. The only failures allowed are the typed
 * ones; nothing is stored; nothing is logged as an unexpected error.
 */

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({
    clients: [LOCAL_CLIENT],
    accessTokenTtl: 60,
  });
});
afterAll(() => server?.close());

/** Any JSON-ish value a query parser could produce (qs makes objects and arrays). */
const queryValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
  fc.integer(),
  fc.constant(null),
  fc.constant(undefined),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
);
const queryKey = fc.oneof(
  fc.constantFrom('state', 'code', 'iss', 'error', 'error_description', 'error_uri', 'session_state', 'scope', '__proto__', 'constructor'),
  fc.string({ maxLength: 12 }),
);

describe.each(STORES)('on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  let logs: CapturedLogs;
  const states: string[] = [];

  beforeAll(async () => {
    logs = captureLogs();
    t = await startTestBroker(server, { kind, logger: logs.logger, providerTimeoutMs: 2000 });
    broker = t.broker;
    for (let i = 0; i < 60; i++) {
      states.push((await broker.beginAuthorization({ serviceId: 'local', userId: `fuzz-${i}`, finishedUrl: '/done' })).state);
    }
  });
  afterAll(() => t?.close());

  it('completeAuthorization with arbitrary queries: only AuthorizationFailed, nothing stored, nothing logged as unexpected', async () => {
    // Half the runs carry a live state, so the fuzz reaches the iss check and the token request.
    const query = fc.record({
      extra: fc.dictionary(queryKey, queryValue, { maxKeys: 6 }),
      state: fc.option(
        fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...states) }, { weight: 1, arbitrary: fc.string({ maxLength: 50 }) }),
        { nil: undefined, freq: 5 },
      ),
      iss: fc.option(
        fc.oneof(
          { weight: 3, arbitrary: fc.constant(server.issuer) },
          { weight: 1, arbitrary: fc.constantFrom(`${server.issuer}/`, 'https://evil.example', '') },
        ),
        { nil: undefined, freq: 5 },
      ),
      code: fc.option(fc.string({ unit: 'binary', maxLength: 100 }), { nil: undefined, freq: 5 }),
      asParams: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        query,
        fc.constantFrom('local', 'local', 'local', 'other', 'nope'),
        async ({ extra, state, iss, code, asParams }, serviceId) => {
          const q: Record<string, unknown> = { ...extra };
          if (state !== undefined) q.state = state;
          if (iss !== undefined) q.iss = iss;
          if (code !== undefined) q.code = code;
          const input = asParams
            ? new URLSearchParams(Object.entries(q).filter(([, v]) => typeof v === 'string') as [string, string][])
            : q;
          const err = await broker.completeAuthorization(serviceId, input).then(
            () => new Error('a fuzzed callback completed'),
            (e: unknown) => e,
          );
          expect(err, String(err)).toBeInstanceOf(AuthorizationFailed);
          const failed = err as AuthorizationFailed;
          if (failed.context.finishedUrl) expect(failed.context.finishedUrl.startsWith('/done?')).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
    // The fuzz went as deep as the token request (where oidc-provider refused every made-up code).
    expect(server.tokenRequests.byGrant.authorization_code ?? 0).toBeGreaterThan(0);
    expect(await allIdentityRows(broker)).toEqual([]);
    expect(logs.lines.filter((l) => JSON.parse(l).level >= 50)).toEqual([]);
  });

  it('beginAuthorization, getIdentity and listIdentities with arbitrary input: typed errors only, no stray sessions', async () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.constantFrom("' OR 1=1 --", '%', '_', '\\', '\u0000', 'idn_x', 'a'.repeat(257)),
    );
    const anyValue = fc.oneof(
      text,
      fc.integer(),
      fc.constant(null),
      fc.array(text, { maxLength: 2 }),
      fc.dictionary(text, text, { maxKeys: 3 }),
    );
    const before = (await broker.store.db.selectFrom('auth_sessions').select('state_hash').execute()).length;
    let begun = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          serviceId: fc.oneof(fc.constant('local'), text),
          userId: anyValue,
          tenantId: fc.option(anyValue, { nil: undefined }),
          tags: fc.option(anyValue, { nil: undefined }),
          finishedUrl: fc.option(anyValue, { nil: undefined }),
        }),
        async (input) => {
          const outcomes = await Promise.allSettled([
            broker.beginAuthorization(input as never),
            broker.getIdentity(input.serviceId, input.userId as never),
            broker.listIdentities(input.serviceId, { userId: input.userId, tenantId: input.tenantId, tags: input.tags } as never, {
              count: 5,
            }),
          ]);
          for (const o of outcomes) {
            if (o.status === 'rejected') {
              const ok = o.reason instanceof InvalidInput || o.reason instanceof NotFound;
              expect(ok, `${(o.reason as Error)?.constructor?.name}: ${(o.reason as Error)?.message}`).toBe(true);
            }
          }
          if (outcomes[0].status === 'fulfilled') begun++;
        },
      ),
      { numRuns: 200 },
    );
    const after = (await broker.store.db.selectFrom('auth_sessions').select('state_hash').execute()).length;
    expect(after - before).toBe(begun);
    expect(await allIdentityRows(broker)).toEqual([]);
  });
});
