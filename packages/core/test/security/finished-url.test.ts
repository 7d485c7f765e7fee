import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInput, validateFinishedUrl, withQuery, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { LOCAL_CLIENT, TEST_BASE_URL, startTestBroker, type TestBroker } from '../support/broker.js';

/**
 * Open redirect through `finishedUrl` (RFC 9700 §4.11): the app's own paths and allow-listed
 * origins only. What matters is where a browser lands, so every accepted value is checked the way
 * a browser reads the Location header EveryAuth sends: resolved against the app's page with the
 * WHATWG URL parser, after the query EveryAuth appends.
 */

const APP = 'https://app.example';
const ALLOWED = [new URL(TEST_BASE_URL).origin, APP];
/** The page a browser is on when it follows the callback's redirect. */
const CALLBACK_PAGE = `${APP}/local/callback?code=c&state=s`;

/** Where a browser goes when it follows `Location: <location>` from the callback page. */
const landing = (location: string) => new URL(location, CALLBACK_PAGE);

/** The Locations EveryAuth can send for an accepted finishedUrl: after success and after failure. */
const locationsFor = (accepted: string) => [
  withQuery(accepted, { userId: 'u', serviceId: 'local' }),
  withQuery(accepted, { error: 'access_denied', error_description: 'x', userId: 'u' }),
];

const TRICKS: [string, string][] = [
  ['an absolute foreign URL', 'https://evil.example/x'],
  ['a foreign http URL', 'http://evil.example'],
  ['protocol-relative', '//evil.example/x'],
  ['protocol-relative with three slashes', '///evil.example'],
  ['slash-backslash', '/\\evil.example'],
  ['backslash-slash', '\\/evil.example'],
  ['two backslashes', '\\\\evil.example'],
  ['encoded slashes without a leading slash', '%2F%2Fevil.example'],
  ['encoded backslash without a leading slash', '%5C%5Cevil.example'],
  ['userinfo on the allowed origin', 'https://app.example@evil.example/'],
  ['userinfo with a password', 'https://app.example:pw@evil.example/'],
  ['credentials on the allowed origin', 'https://user:pw@app.example/x'],
  ['a javascript: URL', 'javascript:alert(document.cookie)'],
  ['a JavaScript: URL in mixed case', 'JaVaScRiPt:alert(1)'],
  ['a data: URL', 'data:text/html,<script>alert(1)</script>'],
  ['a vbscript: URL', 'vbscript:msgbox(1)'],
  ['a tab inside the scheme', 'java\tscript:alert(1)'],
  ['a newline inside the scheme', 'java\nscript:alert(1)'],
  ['a carriage return inside the host', 'https://app.exa\rmple.evil.example/'],
  ['a NUL byte', '/ok\u0000//evil.example'],
  ['a leading space', ' //evil.example'],
  ['a leading tab before //', '\t//evil.example'],
  ['a non-breaking space before //', '\u00a0//evil.example'],
  ['an ideographic full stop in the host (app.example。evil)', 'https://app.example\u3002evil.example/'],
  ['a fullwidth solidus pair', '\uff0f\uff0fevil.example'],
  ['a lookalike Cyrillic host', 'https://\u0430pp.example/'],
  ['the allowed host as a subdomain of the attacker', 'https://app.example.evil.example/'],
  ['the allowed host with another port', 'https://app.example:8443/'],
  ['the allowed host over http', 'http://app.example/'],
  ['a dot segment that collapses into //', '/.//evil.example'],
  ['a dot-dot segment that collapses into //', '/..//evil.example'],
  ['a path that climbs back into //', '/a/..//evil.example'],
  ['an encoded dot segment (%2e) that collapses into //', '/%2e//evil.example'],
  ['an encoded dot-dot segment that collapses into //', '/%2E%2e//evil.example'],
  ['a relative path without a leading slash', 'evil.example'],
  ['an empty string', ''],
  ['an overlong path', `/${'a'.repeat(5000)}`],
];

describe('finishedUrl tricks are refused before the flow starts', () => {
  it.each(TRICKS)('%s', (_name, value) => {
    expect(() => validateFinishedUrl(value, ALLOWED)).toThrow(InvalidInput);
  });

  it.each([
    ['a path', '/done'],
    ['a path with a query and fragment', '/done?x=1#top'],
    ['a path with encoded slashes (stays a path)', '/a%2F%2Fevil.example'],
    ['an allow-listed absolute URL', 'https://app.example/done'],
  ])('accepted: %s, and the browser stays on the app', (_name, value) => {
    const accepted = validateFinishedUrl(value, ALLOWED);
    for (const location of locationsFor(accepted)) expect(ALLOWED).toContain(landing(location).origin);
  });
});

describe('property: whatever finishedUrl is accepted, the browser lands on an allowed origin', () => {
  // Pieces that have opened redirects somewhere: slashes and backslashes, dot segments raw and
  // encoded, userinfo, schemes, whitespace, lookalikes; composed as a prefix and path segments.
  const prefix = fc.constantFrom(
    '',
    '/',
    '//',
    '\\',
    '/\\',
    'https://',
    'https://app.example',
    'https://app.example/',
    'http://127.0.0.1:3999/',
    'javascript:',
    'data:',
    ' ',
    '\t',
    '\u00a0',
    '%2f',
  );
  const segment = fc.constantFrom(
    '',
    '.',
    '..',
    '%2e',
    '%2E%2e',
    '.%2e',
    'evil.example',
    'app.example',
    '@evil.example',
    'app.example@evil.example',
    ':',
    'a',
    'x?y=1',
    '#',
    '%2f',
    '%5c',
    '\\',
    ' ',
    '\u3002',
    '\uff0f',
    'évil',
  );
  const separator = fc.constantFrom('/', '\\', '//', '/./', '/../');
  const candidate = fc
    .tuple(prefix, fc.array(segment, { minLength: 1, maxLength: 6 }), separator)
    .map(([start, segments, sep]) => start + segments.join(sep));

  /** The value as validateFinishedUrl accepts it, or undefined where it refuses it, which must be with InvalidInput. */
  function acceptedOrRefused(value: string): string | undefined {
    try {
      return validateFinishedUrl(value, ALLOWED);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidInput);
      return undefined;
    }
  }

  it('for 3000 composed values', () => {
    fc.assert(
      fc.property(candidate, (value) => {
        const accepted = acceptedOrRefused(value);
        if (accepted === undefined) return;
        for (const location of locationsFor(accepted)) {
          const where = landing(location);
          expect(ALLOWED, `${JSON.stringify(value)} → ${location}`).toContain(where.origin);
          expect(['http:', 'https:']).toContain(where.protocol);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('for arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (value) => {
        const accepted = acceptedOrRefused(value);
        if (accepted === undefined) return;
        for (const location of locationsFor(accepted)) expect(ALLOWED).toContain(landing(location).origin);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('through the broker', () => {
  let server: AuthServer;
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    server = await startAuthServer({
      clients: [LOCAL_CLIENT],
      accessTokenTtl: 60,
    });
    t = await startTestBroker(server, { allowedRedirectOrigins: [APP] });
    broker = t.broker;
  });
  afterAll(async () => {
    await t?.close();
    await server?.close();
  });

  it('beginAuthorization refuses every trick and stores no session', async () => {
    for (const [, value] of TRICKS) {
      await expect(broker.beginAuthorization({ serviceId: 'local', userId: 'u', finishedUrl: value }), value).rejects.toBeInstanceOf(
        InvalidInput,
      );
    }
    expect(await broker.store.db.selectFrom('auth_sessions').select('state_hash').execute()).toEqual([]);
  });

  it('the finishedUrl of a completed flow lands on the app, with the ids appended', async () => {
    const started = await broker.beginAuthorization({ serviceId: 'local', userId: 'lands', finishedUrl: '/done?keep=1' });
    const done = await broker.completeAuthorization('local', (await server.authorize(started.url, { login: 'lands' })).searchParams);
    const where = landing(done.finishedUrl!);
    expect(where.origin).toBe(APP);
    expect(where.pathname).toBe('/done');
    expect(Object.fromEntries(where.searchParams)).toEqual({ keep: '1', userId: 'lands', serviceId: 'local' });
  });
});
