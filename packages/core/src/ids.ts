import { createHash, randomBytes, randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** The random part of the last id made, and its millisecond: the next id in that millisecond counts up from it. */
const last = { time: -1, random: new Uint8Array(10) };

/**
 * A time-ordered id (48-bit millisecond time, 80 random bits, Crockford base32): sorting by id
 * sorts by creation, which makes ids usable as paging cursors. Ids made in the same millisecond by
 * this process take the last one's random part plus one (ULID's monotonic mode), so they sort in
 * the order they were made too: an event feed read `after` an id misses none of its millisecond.
 */
export function sortableId(prefix: string, now = Date.now()): string {
  if (now === last.time) countUp(last.random);
  else {
    last.time = now;
    randomFillSync(last.random);
  }
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = last.random;
  let rand = '';
  for (let i = 0; i < 16; i++) {
    // 5 bits from the 80 random bits, in order.
    const bit = i * 5;
    const byte = bit >> 3;
    const word = ((bytes[byte] ?? 0) << 8) | (bytes[byte + 1] ?? 0);
    rand += CROCKFORD[(word >> (11 - (bit & 7))) & 31];
  }
  return `${prefix}${time}${rand}`;
}

/** Adds one to a big-endian number (80 random bits start it, so it does not wrap in practice). */
function countUp(bytes: Uint8Array): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = (bytes[i]! + 1) & 0xff;
    if (bytes[i] !== 0) return;
  }
}

/** Identity ids carry this prefix; user ids may not start with it, so the two are never confused. */
export const IDENTITY_ID_PREFIX = 'idn_';
export const EVENT_ID_PREFIX = 'evt_';

export const newIdentityId = (now?: number) => sortableId(IDENTITY_ID_PREFIX, now);
export const newEventId = (now?: number) => sortableId(EVENT_ID_PREFIX, now);
export const isIdentityId = (value: string) => value.startsWith(IDENTITY_ID_PREFIX);

/** 256 random bits, base64url: `state`, PKCE verifiers, nonces, browser bindings. */
export const randomToken = () => randomBytes(32).toString('base64url');

export const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/**
 * Whether two strings are equal, in time that depends on their length only, never on where they
 * differ: for secrets and their hashes. Compares UTF-16 code units, so it needs no Buffer (and
 * none of the allocation one costs on a hot path), and cannot throw on strings whose UTF-8 lengths differ.
 */
export function equalInConstantTime(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * 32-bit FNV-1a of the string's UTF-16 code units: cheap and spread enough to pick slots (a lock
 * session, a cache's doorkeeper bit); not for anything an attacker must not steer.
 */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
