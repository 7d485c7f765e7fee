import { describe, expect, it } from 'vitest';
import { ProxyRefused } from '@everyauth/core';
import { apiBase, resolveTarget } from '../../src/proxy/target.js';

const BASES = ['https://app.asana.com/api/1.0', 'https://www.googleapis.com'];

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyRefused);
    return (err as ProxyRefused).reason;
  }
  throw new Error('not refused');
};

describe('resolveTarget', () => {
  it('puts paths under the first base URL and keeps the query', () => {
    expect(resolveTarget(BASES, '/users/me?opt_fields=name').href).toBe('https://app.asana.com/api/1.0/users/me?opt_fields=name');
    expect(resolveTarget(BASES, 'users/me').href).toBe('https://app.asana.com/api/1.0/users/me');
    expect(resolveTarget(BASES, '?x=1').href).toBe('https://app.asana.com/api/1.0?x=1');
    expect(resolveTarget(BASES, '/a#fragment').href).toBe('https://app.asana.com/api/1.0/a');
    // An encoded slash inside a segment is data (GitLab project ids); it cannot climb out.
    expect(resolveTarget(BASES, '/projects/group%2Fproject').pathname).toBe('/api/1.0/projects/group%2Fproject');
  });

  it('accepts an absolute URL only when it starts with a declared base URL', () => {
    expect(resolveTarget(BASES, 'https://www.googleapis.com/calendar/v3/users/me').href).toBe(
      'https://www.googleapis.com/calendar/v3/users/me',
    );
    expect(resolveTarget(BASES, 'https://app.asana.com/api/1.0').href).toBe('https://app.asana.com/api/1.0');
  });

  it.each([
    ['another host', 'https://attacker.example/steal'],
    ['a protocol-relative host', '//attacker.example/steal'],
    ['another scheme', 'http://app.asana.com/api/1.0/users'],
    ['the base host outside the base path', 'https://app.asana.com/other'],
    ['userinfo after the base', 'https://app.asana.com/api/1.0@attacker.example/'],
    ['userinfo before the host', 'https://app.asana.com:x@attacker.example/api/1.0/'],
    ['a longer host name', 'https://www.googleapis.com.attacker.example/'],
    ['a base path prefix of another path', 'https://app.asana.com/api/1.0evil/users'],
    ['a percent-encoded host', 'https://app.as%61na.com/api/1.0/users'],
    ['an IPv4 literal', 'http://127.0.0.1/api'],
    ['a numeric IPv4 host', 'http://2130706433/'],
    ['a hex IPv4 host', 'http://0x7f.0.0.1/'],
    ['an IPv6 literal', 'http://[::1]/'],
    ['a data URL', 'data:text/plain,hi'],
    ['a dot-dot segment', '/../../admin'],
    ['a dot-dot segment inside', '/users/../../admin'],
    ['a single dot segment', '/./users'],
    ['an encoded dot-dot', '/users/%2e%2e/%2E%2E/admin'],
    ['a half-encoded dot-dot', '/users/.%2e/admin'],
    ['a backslash', '/users\\..\\admin'],
    ['CR LF', '/users\r\nHost: attacker.example'],
    ['a NUL', '/users\u0000'],
    ['a space', '/users me'],
    ['a tab before a host', '\t//attacker.example/'],
  ])('refuses %s', (_name, target) => {
    expect(refusal(() => resolveTarget(BASES, target))).toBe('target');
  });

  it('refuses everything when the service declares no base URL', () => {
    expect(refusal(() => resolveTarget([], '/users'))).toBe('target');
  });
});

describe('apiBase', () => {
  it('returns the canonical form without a trailing slash', () => {
    expect(apiBase('https://app.asana.com/api/1.0/', 's')).toBe('https://app.asana.com/api/1.0');
    expect(apiBase('https://www.googleapis.com', 's')).toBe('https://www.googleapis.com');
    expect(apiBase('http://localhost:8080/api', 's')).toBe('http://localhost:8080/api');
  });

  it.each([
    ['not a URL', 'app.asana.com/api'],
    ['plain http to a public host', 'http://app.asana.com/api'],
    ['another scheme', 'ftp://files.example/'],
    ['an IPv4 literal', 'https://10.0.0.1/'],
    ['the loopback by address', 'http://127.0.0.1:8080/'],
    ['an IPv6 literal', 'https://[fd00::1]/'],
    ['a numeric host', 'https://2130706433/'],
    ['userinfo', 'https://user:secret@api.example.com/'],
    ['a query', 'https://api.example.com/?key=1'],
    ['a percent-encoded host', 'https://api.ex%61mple.com/'],
    ['an IDN host (written other than it is sent)', 'https://bücher.example/'],
    ['an explicit default port', 'https://api.example.com:443/'],
  ])('refuses %s', (_name, url) => {
    expect(refusal(() => apiBase(url, 's'))).toBe('config');
  });
});
