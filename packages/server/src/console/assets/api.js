// The console's only way to the server: the /v1 REST API, with the API key in the Authorization
// header. The key lives in sessionStorage (this tab only, gone when it closes), never in a URL.

const STORAGE_KEY = 'everyauth.console.apiKey';

/** An error answer of the API, carrying its `message` (always readable) and `error` code. */
export class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.message === 'string' ? body.message : `The server answered HTTP ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.code = typeof body?.error === 'string' ? body.error : undefined;
  }
}

/** The stored key stopped working (deleted or expired while the page was open). */
export class SessionEnded extends Error {
  constructor(message) {
    super(message);
    this.name = 'SessionEnded';
  }
}

export function storedKey() {
  return window.sessionStorage.getItem(STORAGE_KEY);
}

export function forgetKey() {
  window.sessionStorage.removeItem(STORAGE_KEY);
}

// Relative to the console's own URL, so a server behind a path prefix still works.
const apiUrl = (path) => new URL(`../v1/${path.replace(/^\/+/, '')}`, window.location.href).href;

async function send(key, method, path, body) {
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, { error: 'unreachable', message: 'The EveryAuth server cannot be reached. Is it still running?' });
  }
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** Checks a key by reading the service list with it; keeps it only when the server accepts it. */
export async function signIn(key) {
  const trimmed = key.trim();
  if (!/^ea_[a-z0-9]+_[A-Za-z0-9_-]+$/.test(trimmed)) {
    throw new ApiError(401, {
      error: 'unauthorized',
      message: 'That is not an EveryAuth API key: keys look like ea_<id>_<secret>, as `everyauth serve` printed.',
    });
  }
  await send(trimmed, 'GET', 'services');
  window.sessionStorage.setItem(STORAGE_KEY, trimmed);
}

/** A call with the stored key; a 401 means the session is over, whatever the route. */
export async function api(method, path, body) {
  const key = storedKey();
  if (!key) throw new SessionEnded('Sign in with an API key.');
  try {
    return await send(key, method, path, body);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      forgetKey();
      throw new SessionEnded(`Your session ended: ${error.message} Sign in again with a valid key.`);
    }
    throw error;
  }
}
