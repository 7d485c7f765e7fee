import { InvalidInput } from './errors.js';
import { IDENTITY_ID_PREFIX } from './ids.js';
import { METADATA_MAX_BYTES, type IdentityFilter, type IdentityStatus, type Tags } from './broker.js';

// Control characters (C0, DEL, C1), the Unicode line/paragraph separators, and lone surrogates
// (both databases store them as U+FFFD, so two different ids would become one): never valid in an id.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|\p{Cs}/u;

export const SERVICE_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TAG_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_ID = 256;
const MAX_TAGS = 32;

export function serviceId(value: unknown, field = 'serviceId'): string {
  if (typeof value !== 'string' || !SERVICE_ID.test(value)) {
    throw new InvalidInput(
      `${field} must be 1–63 lowercase letters, digits, "-" or "_", starting with a letter or digit; got ${describe(value)}.`,
      field,
    );
  }
  return value;
}

function text(value: unknown, field: string, max = MAX_ID): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || CONTROL.test(value)) {
    throw new InvalidInput(`${field} must be a string of 1–${max} characters without control characters; got ${describe(value)}.`, field);
  }
  return value;
}

/** A user id or identity id to look up: the token-read path checks only what the database cannot hold faithfully. */
export const lookupId = (value: unknown): string => text(value, 'userId');

export function userId(value: unknown): string {
  const id = text(value, 'userId');
  if (id.startsWith(IDENTITY_ID_PREFIX)) {
    throw new InvalidInput(`userId may not start with "${IDENTITY_ID_PREFIX}", which marks identity ids.`, 'userId');
  }
  return id;
}

export const tenantId = (value: unknown): string => text(value, 'tenantId');

export function tags(value: unknown): Tags {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidInput('tags must be an object of string values.', 'tags');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_TAGS) throw new InvalidInput(`At most ${MAX_TAGS} tags are allowed; got ${entries.length}.`, 'tags');
  const out: Tags = {};
  for (const [key, v] of entries) {
    if (!TAG_KEY.test(key)) throw new InvalidInput(`Tag key ${describe(key)} must be 1–64 letters, digits or "_.:-".`, 'tags');
    out[key] = text(v, `tags.${key}`);
  }
  return out;
}

/** The app's metadata: a JSON object whose serialized form fits {@link METADATA_MAX_BYTES}; returned serialized. */
export function metadata(value: unknown): string {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidInput('metadata must be a JSON object ({} clears it).', 'metadata');
  const json = JSON.stringify(value);
  const size = Buffer.byteLength(json);
  if (size > METADATA_MAX_BYTES)
    throw new InvalidInput(
      `metadata is ${size} bytes as JSON; at most ${METADATA_MAX_BYTES} are allowed. Keep large data in your own database and put its key here.`,
      'metadata',
    );
  return json;
}

const STATUSES: IdentityStatus[] = ['active', 'needs_reauth', 'dead', 'revoked'];

export function identityFilter(value: IdentityFilter | undefined): IdentityFilter {
  const filter: IdentityFilter = {};
  if (!value) return filter;
  if (value.userId !== undefined) filter.userId = text(value.userId, 'userId');
  if (value.tenantId !== undefined) filter.tenantId = tenantId(value.tenantId);
  if (value.tags !== undefined) filter.tags = tags(value.tags);
  if (value.status !== undefined) {
    if (!STATUSES.includes(value.status)) throw new InvalidInput(`status must be one of ${STATUSES.join(', ')}.`, 'status');
    filter.status = value.status;
  }
  return filter;
}

export const isEmptyFilter = (f: IdentityFilter) =>
  f.userId === undefined && f.tenantId === undefined && f.status === undefined && Object.keys(f.tags ?? {}).length === 0;

export function pageCount(value: unknown): number {
  if (value === undefined) return 100;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new InvalidInput(`count must be a whole number from 1 to 1000; got ${describe(value)}.`, 'count');
  return n;
}

/**
 * Where the user may be sent after the flow: a path on the app's own origin, or an absolute URL on
 * an allow-listed origin. Anything a browser could read as another host is refused (RFC 9700 §4.11).
 */
export function finishedUrl(value: unknown, allowedOrigins: readonly string[]): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048 || CONTROL.test(value) || /[\\\s]/.test(value)) {
    throw new InvalidInput(
      'finishedUrl must be a relative path or an allow-listed absolute URL without spaces, backslashes or control characters.',
      'finishedUrl',
    );
  }
  if (value.startsWith('/')) {
    // Dot segments collapse when the URL is parsed (`/.//evil` becomes `//evil`), so the parsed path is checked too.
    if (value.startsWith('//') || new URL(value, 'http://relative.invalid').pathname.startsWith('//')) {
      throw new InvalidInput(
        'finishedUrl may not be protocol-relative ("//host"), also not after dot segments: use a path or an allow-listed origin.',
        'finishedUrl',
      );
    }
    return value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidInput('finishedUrl must start with "/" or be an absolute http(s) URL.', 'finishedUrl');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
    throw new InvalidInput('finishedUrl must be an http(s) URL without credentials.', 'finishedUrl');
  }
  if (!allowedOrigins.includes(url.origin)) {
    throw new InvalidInput(
      `finishedUrl origin ${url.origin} is not allowed; add it to the allowed origins or use a relative path.`,
      'finishedUrl',
    );
  }
  return url.href;
}

/** Adds query parameters to a finishedUrl, relative or absolute, keeping its own query and fragment. */
export function withQuery(target: string, params: Record<string, string | undefined>): string {
  const relative = target.startsWith('/');
  const url = new URL(target, 'http://relative.invalid');
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return relative ? `${url.pathname}${url.search}${url.hash}` : url.href;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a ${value.length}-character string` : JSON.stringify(value);
  return value === undefined ? 'nothing' : typeof value;
}
