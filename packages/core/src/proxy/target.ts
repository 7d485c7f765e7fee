import { isIP } from 'node:net';
import { ProxyRefused } from '../errors.js';

/** Control characters, whitespace and backslashes: never part of a URL the proxy sends a credential to. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u0020\u007f-\u009f\\]/u;
/** A dot segment, plain or percent-encoded (RFC 3986 §5.2.4 removes them; an upstream may decode them first). */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
/** `scheme:` (RFC 3986 §3.1) or `//authority`: the caller named a host itself. */
const ABSOLUTE = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;

/**
 * Whether a parsed URL names its host by IP address: v4, v6, or a number the URL parser reads as
 * v4 (`0x7f.1`, `2130706433`, octal parts; WHATWG URL §3.5). Such a host is never looked up, so the
 * resolved-address check (address.ts) cannot apply to it: credentials go only to hosts named by name.
 */
export const namesAddress = (url: URL): boolean => isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0;

/**
 * Checks a declared API base URL and returns it in canonical form, without a trailing slash. It
 * must be written exactly as the URL parser reads it (no percent-encoded, IDN or numeric host, no
 * default port), name a host rather than an IP address, carry no userinfo, query or fragment, and
 * use https (http only for `localhost`, for local stand-ins).
 */
export function apiBase(raw: string, serviceId: string): string {
  const refuse = (why: string): never => {
    throw new ProxyRefused('config', `The API base URL "${raw}" of service "${serviceId}" ${why}; fix the service's apiBaseUrls.`);
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('is not an absolute URL');
  }
  const canonical = (url.origin + url.pathname).replace(/\/+$/, '');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && url.hostname === 'localhost')) refuse('must use https');
  if (url.username || url.password || url.search || url.hash || raw.includes('@')) refuse('must not carry userinfo, a query or a fragment');
  if (namesAddress(url)) refuse('names an IP address; name the API by its host name');
  if (raw.replace(/\/+$/, '').toLowerCase() !== canonical.toLowerCase()) refuse(`is not in canonical form (write it as ${canonical})`);
  return canonical;
}

/**
 * Where a proxied request goes: `pathOrUrl` resolved under one of the (canonical) base URLs, or
 * refused. A path (`/users/me?opt=1`) is put after the first base URL; an absolute URL is accepted
 * only when it starts, character for character, with one of them. So a host of the caller's
 * choosing, userinfo, an encoded or numeric host, `..` and protocol-relative `//host` never get a
 * credential (the SSRF and credential-leak tricks of RFC 9700 §4.9 and OWASP's SSRF sheet).
 */
export function resolveTarget(bases: readonly string[], pathOrUrl: string): URL {
  const refuse = (why: string): never => {
    throw new ProxyRefused('target', `The proxy sends credentials only under the service's API base URLs (${bases.join(', ')}): ${why}.`);
  };
  if (typeof pathOrUrl !== 'string' || pathOrUrl.length > 8192) refuse('the path must be a string of at most 8192 characters');
  if (UNSAFE.test(pathOrUrl)) refuse('the path holds whitespace, a control character or a backslash');
  let base = bases[0];
  let rest = pathOrUrl;
  if (ABSOLUTE.test(pathOrUrl)) {
    const lower = pathOrUrl.toLowerCase();
    base = bases.find((b) => lower.startsWith(b.toLowerCase()) && /^(?:[/?#]|$)/.test(pathOrUrl.slice(b.length)));
    if (base === undefined) refuse(`${JSON.stringify(pathOrUrl.slice(0, 100))} is an absolute URL outside them`);
    rest = pathOrUrl.slice(base!.length);
  }
  if (base === undefined) return refuse('the service declares none');
  rest = rest.split('#')[0]!;
  if (rest !== '' && !rest.startsWith('/') && !rest.startsWith('?')) rest = `/${rest}`;
  const path = rest.split('?')[0]!;
  if (path.split('/').some((segment) => DOT_SEGMENT.test(segment))) refuse('the path holds a "." or ".." segment');
  const url = new URL(base + rest);
  const parsedBase = new URL(base);
  const basePath = parsedBase.pathname.replace(/\/$/, '');
  // Defence in depth: whatever the checks above missed, the parsed URL must still sit under the base.
  if (
    url.origin !== parsedBase.origin ||
    url.username ||
    url.password ||
    !(url.pathname === basePath || url.pathname.startsWith(`${basePath}/`))
  ) {
    refuse('the path leaves the base URL');
  }
  return url;
}
