import { ProxyRefused } from '../errors.js';

/**
 * Request header fields as undici's `request()` takes them: lower-case names, one string each (a
 * repeated field joined with ", ").
 */
export type RequestFields = Record<string, string>;

/** Response header fields as undici gives them and Fastify's `reply.headers` takes them: lower-case names, a repeated field (Set-Cookie) as an array. */
export type ResponseFields = Record<string, string | string[]>;

/** What a caller may give as request fields: fetch's `HeadersInit`, or a Node request's parsed fields. */
export type FieldsInit = HeadersInit | Record<string, string | string[] | undefined>;

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection, so a proxy removes them, and
 * every field the Connection header names, before forwarding in either direction.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Request fields the caller may not pass on: its own credentials (a server API key, cookies for
 * the app's own domain), the host (the target's is set by undici), the length (the body is
 * re-framed) and EveryAuth's own `EveryAuth-*` fields.
 */
const NOT_FORWARDED = new Set(['host', 'authorization', 'proxy-authorization', 'cookie', 'content-length', 'expect']);

/** Response fields that may carry a credential back to the caller: stripped unless `passResponseHeaders` names them. */
export const CREDENTIAL_RESPONSE_HEADERS = ['authorization', 'proxy-authorization', 'set-cookie', 'set-cookie2'] as const;

/** A field name (RFC 9110 §5.1). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Leading and trailing whitespace, which is not part of a field value (RFC 9110 §5.5; fetch's "normalize"). */
const OUTER_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;
/**
 * What a field value may not hold (RFC 9110 §5.5: field-vchar, SP and HTAB only): above all CR, LF
 * and NUL, which a recipient must not accept as they split one field into two.
 */
const NOT_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** The names the Connection field lists, which are hop-by-hop for this connection too. */
function connectionNamed(value: string | string[] | undefined): Set<string> {
  const named = new Set<string>();
  for (const list of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
    for (const name of list.split(',')) {
      const trimmed = name.trim().toLowerCase();
      if (TOKEN.test(trimmed)) named.add(trimmed);
    }
  }
  return named;
}

/** The (name, value) pairs of any `FieldsInit`, a repeated Node field as one pair per value. */
function* pairsOf(init: FieldsInit): Iterable<[string, string]> {
  if (init instanceof Headers || Array.isArray(init) || Symbol.iterator in init) {
    for (const pair of init as Iterable<string[]>) {
      if (pair.length !== 2) throw new TypeError('a header must be a [name, value] pair');
      yield [String(pair[0]), String(pair[1])];
    }
    return;
  }
  for (const name in init) {
    const value = (init as Record<string, string | string[] | undefined>)[name];
    if (Array.isArray(value)) for (const one of value) yield [name, one];
    else if (value !== undefined) yield [name, String(value)];
  }
}

/**
 * The fields to send upstream, from what the caller gave: names lower-cased, values trimmed,
 * repeated fields joined with ", " (RFC 9110 §5.3), as fetch's `Headers` would. A name that is not a
 * token or a value with CR, LF or NUL is refused. Hop-by-hop fields, the caller's own credentials
 * and `EveryAuth-*` fields are left out.
 */
export function requestHeaders(init: FieldsInit | undefined): RequestFields {
  const fields: RequestFields = {};
  if (init === undefined) return fields;
  let connection: string | undefined;
  try {
    for (const [rawName, rawValue] of pairsOf(init)) {
      const name = rawName.toLowerCase();
      const value = rawValue.replace(OUTER_WHITESPACE, '');
      if (!TOKEN.test(name)) throw new TypeError(`"${name.slice(0, 40)}" is not a valid field name`);
      if (NOT_FIELD_VALUE.test(value))
        throw new TypeError(`the value of "${name}" holds CR, LF, NUL or another character outside field values`);
      if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      if (HOP_BY_HOP.has(name) || NOT_FORWARDED.has(name) || name.startsWith('everyauth-')) continue;
      fields[name] = name in fields ? `${fields[name]}, ${value}` : value;
    }
  } catch (err) {
    throw new ProxyRefused(
      'header',
      `A request header is not valid (${(err as Error).message.split('\n')[0]}): names are tokens and values must not hold CR, LF or NUL (RFC 9110 §5).`,
    );
  }
  for (const name of connectionNamed(connection)) delete fields[name];
  return fields;
}

/**
 * The fields to hand back to the caller, from undici's response fields: hop-by-hop fields and
 * credential-bearing fields are removed (`pass` keeps some of the latter, e.g. `set-cookie` for an
 * API that needs its cookie). The body is passed as sent, so Content-Encoding and -Length stay true.
 */
export function responseHeaders(upstream: Record<string, string | string[] | undefined>, pass: readonly string[] = []): ResponseFields {
  const named = connectionNamed(upstream.connection);
  const fields: ResponseFields = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    if ((CREDENTIAL_RESPONSE_HEADERS as readonly string[]).includes(name) && !pass.includes(name)) continue;
    fields[name] = value;
  }
  return fields;
}

/** Response fields as a fetch `Headers`, a repeated field appended once per value. */
export function toHeaders(fields: ResponseFields): Headers {
  const headers = new Headers();
  for (const name in fields) {
    const value = fields[name]!;
    if (Array.isArray(value)) for (const one of value) headers.append(name, one);
    else headers.append(name, value);
  }
  return headers;
}
