/**
 * Signs in and consents at the authorization server over plain HTTP, as a user at its pages would,
 * for tests and scripts that have no browser.
 */

/** How the user answers the authorization server's pages. */
export interface AuthorizeOptions {
  /** User name to sign in as (default `user-1`); the account's claims are derived from it. */
  login?: string;
  /** Cancel instead of consenting: the redirect then carries `error=access_denied`. */
  deny?: boolean;
  /** How to answer a page other than this package's own (a stand-in's sign-in page): the request to make next. */
  answer?: PageAnswer;
}

/** Given an interaction page's URL and HTML, the request that answers it (a form POST, or a GET without `form`). */
export type PageAnswer = (page: URL, html: string) => { url: URL; form?: Record<string, string> };

/** The account {@link authorizeOverHttp} signs in as unless told otherwise. */
export const DEFAULT_LOGIN = 'user-1';

/**
 * Follows the authorization request `start` through sign-in and consent at the server of `issuer`;
 * returns the redirect that leaves it (to the client's redirect_uri), unfetched.
 */
export async function authorizeOverHttp(issuer: string, start: string | URL, options: AuthorizeOptions = {}): Promise<URL> {
  const jar = new CookieJar();
  let request: { url: URL; form?: Record<string, string> } = { url: new URL(start) };
  for (let hop = 0; hop < 20; hop += 1) {
    const response = await fetch(request.url, {
      method: request.form ? 'POST' : 'GET',
      body: request.form ? new URLSearchParams(request.form) : undefined,
      headers: { cookie: jar.header() },
      redirect: 'manual',
    });
    jar.store(response.headers);

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, request.url);
      await response.body?.cancel();
      if (!isUnderIssuer(next, issuer)) return next; // the client's redirect_uri: hand it back unfetched
      request = { url: next };
    } else if (response.ok && /\/interaction\/[^/]+$/.test(request.url.pathname)) {
      request = (options.answer ?? ((page, html) => answerPage(page, html, options)))(request.url, await response.text());
    } else {
      throw new Error(`authorization failed at ${request.url.pathname}: ${response.status} ${await response.text()}`);
    }
  }
  throw new Error('authorization did not reach the redirect_uri within 20 hops');
}

function isUnderIssuer(url: URL, issuer: string): boolean {
  const href = `${url.origin}${url.pathname}`;
  return href === issuer || href.startsWith(`${issuer}/`);
}

/** The pages' forms post to `<page>/login`, `<page>/consent` and `<page>/abort` (see interactions.ts). */
function answerPage(page: URL, html: string, options: AuthorizeOptions): { url: URL; form?: Record<string, string> } {
  if (options.deny) return { url: new URL(`${page.pathname}/abort`, page), form: {} };
  if (html.includes(`action="${page.pathname}/login"`))
    return { url: new URL(`${page.pathname}/login`, page), form: { login: options.login ?? DEFAULT_LOGIN } };
  if (html.includes(`action="${page.pathname}/consent"`)) return { url: new URL(`${page.pathname}/consent`, page), form: {} };
  throw new Error(`unexpected interaction page at ${page.pathname}: ${html.slice(0, 200)}`);
}

/**
 * Cookies by name only: one jar per authorization and one origin, so paths and domains do not
 * matter, and a later cookie of the same name (the next interaction's) is the one to send.
 */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const [name = '', value = ''] = pair.split(/=(.*)/s).map((part) => part.trim());
      if (value === '' || attributes.some(isExpiry)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

function isExpiry(attribute: string): boolean {
  const [key = '', value = ''] = attribute.split('=').map((part) => part.trim().toLowerCase());
  return (key === 'max-age' && Number(value) <= 0) || (key === 'expires' && Date.parse(value) <= Date.now());
}
