import { ProxyRefused } from '../errors.js';

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection, so a proxy removes them, and
 * every field the Connection header names, before forwarding in either direction.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * Request fields the caller may not pass on: its own credentials (a server API key, cookies for
 * the app's own domain), the host (the target's is set by fetch), the length (the body is
 * re-framed) and EveryAuth's own `EveryAuth-*` fields.
 */
const NOT_FORWARDED = ['host', 'authorization', 'proxy-authorization', 'cookie', 'content-length', 'expect'];

/** Response fields that may carry a credential back to the caller: stripped unless `passResponseHeaders` names them. */
export const CREDENTIAL_RESPONSE_HEADERS = ['authorization', 'proxy-authorization', 'set-cookie', 'set-cookie2'] as const;

/** A field name (RFC 9110 §5.1). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function dropHopByHop(headers: Headers): void {
  for (const named of (headers.get('connection') ?? '').split(',')) {
    const name = named.trim();
    if (TOKEN.test(name)) headers.delete(name);
  }
  for (const name of HOP_BY_HOP) headers.delete(name);
}

/**
 * The fields to send upstream, from what the caller gave. A name or value with CR, LF or NUL is
 * refused (RFC 9110 §5.5: a recipient must not accept them; they split one field into two).
 */
export function requestHeaders(init: HeadersInit | undefined): Headers {
  let headers: Headers;
  try {
    headers = new Headers(init);
  } catch (err) {
    throw new ProxyRefused(
      'header',
      `A request header is not valid (${(err as Error).message.split('\n')[0]}): names are tokens and values must not hold CR, LF or NUL (RFC 9110 §5).`,
    );
  }
  dropHopByHop(headers);
  for (const name of NOT_FORWARDED) headers.delete(name);
  for (const [name] of [...headers]) if (name.startsWith('everyauth-')) headers.delete(name);
  return headers;
}

/**
 * The fields to hand back to the caller, from undici's raw header object: hop-by-hop fields and
 * credential-bearing fields are removed (`pass` keeps some of the latter, e.g. `set-cookie` for an
 * API that needs its cookie). The body is passed as sent, so Content-Encoding and -Length stay true.
 */
export function responseHeaders(upstream: Record<string, string | string[] | undefined>, pass: readonly string[] = []): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(upstream)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one);
  }
  dropHopByHop(headers);
  for (const name of CREDENTIAL_RESPONSE_HEADERS) if (!pass.includes(name)) headers.delete(name);
  return headers;
}
