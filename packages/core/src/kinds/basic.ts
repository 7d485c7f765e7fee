import { InvalidInput } from '../errors.js';

/**
 * HTTP Basic (RFC 7617 §2): base64 of `user-id:password` in UTF-8. A user-id containing a colon
 * cannot be represented (§2), so it is refused rather than silently split elsewhere.
 */
export function basicAuthorization(username: string, password: string): string {
  if (username.includes(':')) throw new InvalidInput('A Basic user name may not contain ":" (RFC 7617 §2).', 'fields');
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
