/**
 * A local stand-in for Google: the OAuth endpoints of accounts.google.com and oauth2.googleapis.com,
 * OpenID userinfo, and the Calendar v3 routes the examples call, in Google's wire format, so the
 * official `googleapis` client works against it with only `rootUrl` changed.
 */
import { randomBytes } from 'node:crypto';
import express, { type Response } from 'express';
import { OAuthStandIn, type Account, type StandInClient } from './oauth.js';

export interface CalendarEvent {
  kind: 'calendar#event';
  etag: string;
  id: string;
  status: 'confirmed';
  htmlLink: string;
  created: string;
  updated: string;
  summary: string;
  creator: { email: string; self: true };
  organizer: { email: string; self: true };
  start: { date?: string; dateTime?: string; timeZone?: string };
  end: { date?: string; dateTime?: string; timeZone?: string };
  iCalUID: string;
  sequence: 0;
  reminders: { useDefault: true };
  eventType: 'default';
}

export interface GoogleStandIn {
  /** Base URL for everything: OAuth at `${url}/o/oauth2/v2/auth`, the Calendar API at `${url}/calendar/v3`. */
  url: string;
  oauth: OAuthStandIn;
  /** Each account's primary calendar, by email. */
  calendars: Map<string, CalendarEvent[]>;
  close(): Promise<void>;
}

const CALENDAR_SCOPES = ['https://www.googleapis.com/auth/calendar', 'https://www.googleapis.com/auth/calendar.events'];

/** Google's quick-add understands English; the stand-in understands "<summary> on YYYY-MM-DD". */
export function parseQuickAdd(text: string, now = new Date()): Pick<CalendarEvent, 'summary' | 'start' | 'end'> {
  const dated = /^(.*?)\s+on\s+(\d{4}-\d{2}-\d{2})\s*$/.exec(text);
  if (dated) {
    const next = new Date(`${dated[2]}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    return { summary: dated[1]!, start: { date: dated[2]! }, end: { date: next.toISOString().slice(0, 10) } };
  }
  const start = new Date(now.getTime() + 3600_000);
  start.setUTCMinutes(0, 0, 0);
  return { summary: text, start: { dateTime: start.toISOString() }, end: { dateTime: new Date(start.getTime() + 3600_000).toISOString() } };
}

export async function startGoogleStandIn(options: { clients?: StandInClient[]; port?: number } = {}): Promise<GoogleStandIn> {
  const oauth = new OAuthStandIn(
    {
      name: 'Google',
      paths: { authorize: '/o/oauth2/v2/auth', token: '/token', revoke: '/revoke' },
      accessTokenTtlSeconds: 3599,
      // Google sends iss on the authorization response without advertising it.
      sendsIss: true,
      scopes: [...CALENDAR_SCOPES, 'https://www.googleapis.com/auth/calendar.readonly'],
      // A refresh token only with access_type=offline, and after the first consent only with prompt=consent.
      issuesRefreshToken: (params, first) => params.access_type === 'offline' && (first || /\bconsent\b/.test(String(params.prompt ?? ''))),
      // Google answers with full scope URLs for the short names it accepts.
      tokenResponse: (body, { scope }) => ({ ...body, scope: scope.map(expandScope).join(' ') }),
    },
    options.clients,
  );
  const calendars = new Map<string, CalendarEvent[]>();

  const app = express();
  app.disable('x-powered-by');
  oauth.routes(app);

  const error = (res: Response, code: number, message: string, reason: string) =>
    void res.status(code).json({
      error: {
        code,
        message,
        errors: [{ message, domain: 'global', reason }],
        status: code === 401 ? 'UNAUTHENTICATED' : code === 403 ? 'PERMISSION_DENIED' : 'NOT_FOUND',
      },
    });
  const authenticated = (scopes: string[] | undefined) => async (req: express.Request, res: Response, next: express.NextFunction) => {
    const grant = await oauth.authenticate(req);
    if (!grant)
      return error(
        res,
        401,
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        'authError',
      );
    if (scopes && !grant.scope.some((s) => scopes.includes(s)))
      return error(res, 403, 'Request had insufficient authentication scopes.', 'insufficientPermissions');
    res.locals.account = grant.account;
    res.locals.scope = grant.scope;
    next();
  };
  const primary = (account: Account, calendarId: string) => {
    if (calendarId !== 'primary' && calendarId !== account.email) return undefined;
    let events = calendars.get(account.email);
    if (!events) calendars.set(account.email, (events = []));
    return events;
  };

  app.post('/calendar/v3/calendars/:calendarId/events/quickAdd', authenticated(CALENDAR_SCOPES), (req, res) => {
    const account = res.locals.account as Account;
    const events = primary(account, String(req.params.calendarId));
    if (!events) return error(res, 404, 'Not Found', 'notFound');
    const text = typeof req.query.text === 'string' ? req.query.text : '';
    if (!text) return error(res, 400, 'Required parameter: text', 'required');
    const now = new Date().toISOString();
    const id = randomBytes(13).toString('hex');
    const event: CalendarEvent = {
      kind: 'calendar#event',
      etag: `"${Date.now()}"`,
      id,
      status: 'confirmed',
      htmlLink: `https://www.google.com/calendar/event?eid=${id}`,
      created: now,
      updated: now,
      ...parseQuickAdd(text),
      creator: { email: account.email, self: true },
      organizer: { email: account.email, self: true },
      iCalUID: `${id}@google.com`,
      sequence: 0,
      reminders: { useDefault: true },
      eventType: 'default',
    };
    events.push(event);
    res.json(event);
  });
  app.get(
    '/calendar/v3/calendars/:calendarId/events',
    authenticated([...CALENDAR_SCOPES, 'https://www.googleapis.com/auth/calendar.readonly']),
    (req, res) => {
      const account = res.locals.account as Account;
      const events = primary(account, String(req.params.calendarId));
      if (!events) return error(res, 404, 'Not Found', 'notFound');
      res.json({
        kind: 'calendar#events',
        etag: `"${Date.now()}"`,
        summary: account.email,
        updated: new Date().toISOString(),
        timeZone: 'UTC',
        accessRole: 'owner',
        defaultReminders: [],
        items: events,
      });
    },
  );
  app.get('/v1/userinfo', authenticated(['openid', 'email', 'profile']), (_req, res) => {
    const account = res.locals.account as Account;
    res.json({ sub: account.id, name: account.name, email: account.email, email_verified: true });
  });

  const listening = await oauth.listen(app, options.port);
  return { url: listening.url, oauth, calendars, close: listening.close };
}

/** Google answers with full scope URLs for the short names it accepts. */
function expandScope(scope: string): string {
  if (scope === 'email' || scope === 'profile') return `https://www.googleapis.com/auth/userinfo.${scope}`;
  return scope;
}
