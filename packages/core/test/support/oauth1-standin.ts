/**
 * An OAuth 1.0a provider stand-in (RFC 5849) that checks every signature with its own
 * implementation of the signature base string on node:crypto, independent of the oauth-1.0a
 * library EveryAuth signs with. Three-legged flow, then a protected resource.
 */
import { createHmac, randomBytes, verify, type KeyObject } from 'node:crypto';
import { startApiStandIn, type ApiStandIn, type RecordedRequest } from './api-standin.js';

/** RFC 5849 §3.6: RFC 3986 unreserved characters stay, everything else is %XX in upper case. */
const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function authParams(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header?.startsWith('OAuth ')) return out;
  for (const m of header.slice(6).matchAll(/([a-z_]+)="([^"]*)"/g)) out.set(m[1]!, decodeURIComponent(m[2]!));
  return out;
}

/** The signature base string of §3.4.1, from the request as received. */
function baseString(req: RecordedRequest, oauth: Map<string, string>, origin: string): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of oauth) if (k !== 'oauth_signature' && k !== 'realm') pairs.push([enc(k), enc(v)]);
  for (const [k, v] of req.url.searchParams) pairs.push([enc(k), enc(v)]);
  if ((req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(req.body)) pairs.push([enc(k), enc(v)]);
  }
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const params = pairs.map(([k, v]) => `${k}=${v}`).join('&');
  return [req.method.toUpperCase(), enc(`${origin}${req.url.pathname}`), enc(params)].join('&');
}

export interface OAuth1StandIn {
  api: ApiStandIn;
  origin: string;
  /** The next authorize step declines (Twitter/X's `denied`). */
  denyNext: boolean;
  /** Signatures that failed verification, by path. */
  rejected: string[];
  close(): Promise<void>;
}

export async function startOAuth1StandIn(consumer: { key: string; secret?: string; publicKey?: KeyObject }): Promise<OAuth1StandIn> {
  const api = await startApiStandIn();
  const origin = api.origin;
  const tokens = new Map<string, { secret: string; callback?: string; verifier?: string; access?: boolean }>();
  const state: OAuth1StandIn = { api, origin, denyNext: false, rejected: [], close: () => api.close() };

  const check = (req: RecordedRequest, needToken: boolean): Map<string, string> | undefined => {
    const oauth = authParams(req.headers.authorization);
    const token = oauth.get('oauth_token');
    const tokenSecret = token ? (tokens.get(token)?.secret ?? '') : '';
    const base = baseString(req, oauth, origin);
    const signature = oauth.get('oauth_signature') ?? '';
    const method = oauth.get('oauth_signature_method');
    let ok =
      oauth.get('oauth_consumer_key') === consumer.key && oauth.get('oauth_version') === '1.0' && (!needToken || tokens.has(token ?? ''));
    if (method === 'HMAC-SHA1' && consumer.secret !== undefined) {
      ok &&=
        createHmac('sha1', `${enc(consumer.secret)}&${enc(tokenSecret)}`)
          .update(base)
          .digest('base64') === signature;
    } else if (method === 'RSA-SHA1' && consumer.publicKey) {
      ok &&= verify('RSA-SHA1', Buffer.from(base), consumer.publicKey, Buffer.from(signature, 'base64'));
    } else ok = false;
    if (!ok) state.rejected.push(req.url.pathname);
    return ok ? oauth : undefined;
  };
  const form = (values: Record<string, string>) => ({
    status: 200,
    body: new URLSearchParams(values).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  const invalid = { status: 401, body: 'oauth_problem=signature_invalid', headers: { 'content-type': 'text/plain' } };

  api.route('POST /oauth/request_token', (req) => {
    const oauth = check(req, false);
    if (!oauth || !oauth.get('oauth_callback')) return invalid;
    const token = `rt_${randomBytes(8).toString('hex')}`;
    tokens.set(token, { secret: randomBytes(8).toString('hex'), callback: oauth.get('oauth_callback') });
    return form({ oauth_token: token, oauth_token_secret: tokens.get(token)!.secret, oauth_callback_confirmed: 'true' });
  });
  api.route('GET /oauth/authorize', (req) => {
    const token = req.url.searchParams.get('oauth_token') ?? '';
    const entry = tokens.get(token);
    if (!entry?.callback) return { status: 400, body: 'unknown request token' };
    const back = new URL(entry.callback);
    if (state.denyNext) {
      state.denyNext = false;
      back.searchParams.set('denied', token);
    } else {
      entry.verifier = randomBytes(6).toString('hex');
      back.searchParams.set('oauth_token', token);
      back.searchParams.set('oauth_verifier', entry.verifier);
    }
    return { status: 302, body: '', headers: { location: back.href } };
  });
  api.route('POST /oauth/access_token', (req) => {
    const oauth = check(req, true);
    const entry = oauth && tokens.get(oauth.get('oauth_token')!);
    if (!entry?.verifier || entry.verifier !== oauth!.get('oauth_verifier')) return invalid;
    tokens.delete(oauth!.get('oauth_token')!); // temporary credentials are single use (§2.3)
    const token = `at_${randomBytes(8).toString('hex')}`;
    tokens.set(token, { secret: randomBytes(8).toString('hex'), access: true });
    return form({ oauth_token: token, oauth_token_secret: tokens.get(token)!.secret, user_id: '1234', screen_name: 'ann' });
  });
  api.route('GET /1/members/me', (req) => {
    const oauth = check(req, true);
    if (!oauth || !tokens.get(oauth.get('oauth_token')!)?.access) return invalid;
    return { status: 200, body: { id: 'member-1', fields: req.url.searchParams.get('fields') } };
  });
  return state;
}
