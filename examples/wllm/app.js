// Work Less Live More: the user's Asana tasks, each one click away from their Google Calendar.
// The tutorial's app on EveryAuth: one authorize() per service, the tutorial's three session
// middlewares over cookie-session, and the user id kept in the app's own session.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asana from 'asana';
import cookieSession from 'cookie-session';
import express from 'express';
import { google } from 'googleapis';
import Mustache from 'mustache';
import everyauth from '@everyauth/express';

const here = dirname(fileURLToPath(import.meta.url));
const bootstrapDist = join(dirname(createRequire(import.meta.url).resolve('bootstrap/package.json')), 'dist');

export const SERVICES = ['asana', 'google'];

/**
 * @param {object} [options]
 * @param {string} [options.asanaApiUrl] Asana's API base (the stand-in's in demo mode).
 * @param {string} [options.googleRootUrl] Google APIs' root URL (the stand-in's in demo mode).
 * @param {string} [options.sessionSecret] Signs the session cookie.
 * @param {string} [options.proxyApiKey] Proxy mode: the API URLs above are an EveryAuth server's
 *   /v1/proxy/{service}; the SDKs send this key instead of a token and name the user in a header.
 */
export function createApp(options = {}) {
  const asanaApiUrl = options.asanaApiUrl ?? process.env.ASANA_API_URL ?? 'https://app.asana.com/api/1.0';
  const googleRootUrl = options.googleRootUrl ?? process.env.GOOGLE_ROOT_URL ?? 'https://www.googleapis.com/';
  const sessionSecret = options.sessionSecret ?? process.env.SESSION_SECRET ?? randomUUID();
  const proxyApiKey = options.proxyApiKey ?? process.env.EVERYAUTH_PROXY_API_KEY;
  /** How the SDKs authenticate for one identity: its token, or (proxy mode) the API key and the user's id. */
  const credentialsOf = (identity) =>
    proxyApiKey
      ? { token: proxyApiKey, headers: { 'EveryAuth-User-Id': encodeURIComponent(identity.userId) } }
      : { token: identity.accessToken, headers: {} };

  const app = express();
  app.engine('mustache', renderMustache);
  app.set('view engine', 'mustache');
  app.set('views', join(here, 'views'));
  app.use('/static/bootstrap', express.static(bootstrapDist));
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));
  app.use(cookieSession({ name: 'session', secret: sessionSecret, sameSite: 'lax', httpOnly: true }));

  // Initialize auth route for every service. The URL keeps the tutorial's shape, but the user id
  // comes from this app's session: a user id in a URL is something anyone can type.
  SERVICES.forEach((service) => {
    app.use(
      `/${service}/authorize/:userId`,
      everyauth.authorize(service, {
        finishedUrl: `/tasks`,
        mapToUserId: (req) => sessionUserId(req),
      }),
    );
  });

  // ---- the tutorial's middlewares, as written ----

  // Check if all sessions are completed
  const isAllSessionsComplete = (req, res, next) => {
    let isSessionComplete = true;

    SERVICES.forEach((service) => {
      // If any one service is missing, set it to False
      if (!req.session[`${service}UserId`]) {
        isSessionComplete = false;
      }
    });
    res.locals.fullyAuthenticated = isSessionComplete;
    return next();
  };

  // Set Session UserId for service
  const setSession = (req, res, next) => {
    // If it returns a userID, retreive Service Name
    if (req.query.userId) {
      // Service Name will only be returned after an auth has been completed
      const serviceName = req.query.serviceId;
      if (!serviceName) {
        return res.redirect(`/`);
      }
      req.session[`${serviceName}UserId`] = req.query.userId;
    }
    return next();
  };

  // Check is all sessions are complete
  const ensureSession = (req, res, next) => {
    SERVICES.forEach((service) => {
      // For the missing service, redirect to authorization flow for that service
      if (!req.session[`${service}UserId`]) {
        return res.redirect(`/${service}/authorize/${req.query.userId}`);
      }
    });
    return next();
  };

  // ---- what the tutorial left out: failed authorizations, and user ids from the URL ----

  /** An authorization that failed comes back as error + error_description: show it. */
  const showAuthorizationError = (req, res, next) => {
    if (!req.query.error) return next();
    res.status(400).render('error', {
      title: 'Authorization failed',
      service: req.query.serviceId,
      error: req.query.error,
      description: req.query.error_description,
    });
  };

  /** setSession trusts ?userId=; only this session's own user id may be set that way. */
  const onlyOwnUserId = (req, res, next) => {
    if (req.query.userId && req.query.userId !== req.session.userId) {
      return res.status(403).render('error', { title: 'Not your session', description: 'That link belongs to another user.' });
    }
    return next();
  };

  const guarded = [showAuthorizationError, onlyOwnUserId, setSession, ensureSession];

  app.get('/', isAllSessionsComplete, (req, res) => {
    if (res.locals.fullyAuthenticated) {
      return res.redirect(`/tasks`);
    }
    return res.render('index', { userId: sessionUserId(req) });
  });

  app.get('/tasks', ...guarded, async (req, res, next) => {
    // ensureSession may already have sent the user to authorize a service.
    if (res.headersSent) return;
    try {
      const asanaIdentity = await identityOrAuthorize('asana', req, res, proxyApiKey);
      const googleIdentity = asanaIdentity && (await identityOrAuthorize('google', req, res, proxyApiKey));
      if (!asanaIdentity || !googleIdentity) return;

      const [taskDetails, calendarEventsList] = await Promise.all([
        listTasks(asanaApiUrl, credentialsOf(asanaIdentity)),
        listEvents(googleRootUrl, credentialsOf(googleIdentity)),
      ]);
      res.render('tasklist', { TaskListData: { taskDetails, calendarEventsList }, added: req.query.added });
    } catch (err) {
      next(err);
    }
  });

  // Add a new event to a calendar by ID
  app.post('/tasks/calendar', ...guarded, async (req, res, next) => {
    if (res.headersSent) return;
    try {
      const googleIdentity = await identityOrAuthorize('google', req, res, proxyApiKey);
      if (!googleIdentity) return;
      const quickAddText = req.body.quickadd || 'New Event Added by WLLM for Tomorrow at Noon';
      const calendar = calendarClient(googleRootUrl, credentialsOf(googleIdentity));
      const { data: event } = await calendar.events.quickAdd({ calendarId: 'primary', text: quickAddText });
      res.redirect(303, `/tasks?added=${encodeURIComponent(event.summary ?? quickAddText)}`);
    } catch (err) {
      next(err);
    }
  });

  app.get('/signout', (req, res) => {
    req.session = null;
    res.redirect('/');
  });

  // Express knows an error handler by its four parameters.
  app.use((err, req, res, _next) => {
    // ensureSession as written can redirect twice; the first redirect already reached the browser.
    if (res.headersSent) return;
    console.error(err);
    res.status(err.status ?? 500).render('error', { title: 'Something went wrong', description: err.message });
  });
  return app;
}

/** The app's own user id for this browser, made on first visit and kept in the signed session. */
function sessionUserId(req) {
  if (!req.session.userId) req.session.userId = randomUUID();
  return req.session.userId;
}

/**
 * An always-fresh token for the session's user (in proxy mode: the identity, no token); when there
 * is none (never authorized, or the grant was revoked) the user is sent to authorize the service
 * again and undefined is returned.
 */
async function identityOrAuthorize(service, req, res, proxied) {
  const userId = req.session[`${service}UserId`];
  try {
    if (proxied) {
      const { items } = await everyauth.getIdentities(service, { userId, status: 'active' });
      if (items[0]) return items[0];
    } else {
      const identity = await everyauth.getIdentity(service, userId);
      if (identity) return identity;
    }
  } catch (err) {
    if (!(err instanceof everyauth.ReauthorizationRequired)) throw err;
  }
  req.session[`${service}UserId`] = null;
  res.redirect(`/${service}/authorize/${sessionUserId(req)}`);
  return undefined;
}

/** The user's tasks in their first workspace: name, notes and due date, through the official SDK. */
async function listTasks(basePath, credentials) {
  const client = new asana.ApiClient();
  client.basePath = basePath;
  client.authentications.token.accessToken = credentials.token;
  client.defaultHeaders = { ...client.defaultHeaders, ...credentials.headers };
  const me = await new asana.UsersApi(client).getUser('me', { opt_fields: 'workspaces' });
  const workspace = me.data.workspaces[0]?.gid;
  if (!workspace) return [];
  const tasks = await new asana.TasksApi(client).getTasks({ workspace, assignee: 'me', opt_fields: 'name,notes,due_on' });
  return tasks.data.map((task) => ({ taskGID: task.gid, taskName: task.name, taskNotes: task.notes, taskDueDate: task.due_on }));
}

async function listEvents(rootUrl, credentials) {
  const calendar = calendarClient(rootUrl, credentials);
  const { data } = await calendar.events.list({ calendarId: 'primary', timeMin: new Date(Date.now() - 86_400_000).toISOString() });
  return (data.items ?? []).map((item) => ({
    summary: item.summary,
    description: item.description,
    startTime: item.start?.dateTime ?? item.start?.date ?? '',
  }));
}

function calendarClient(rootUrl, credentials) {
  const auth = new google.auth.OAuth2();
  auth.setCredentials({ access_token: credentials.token });
  const root = new URL(rootUrl);
  // googleapis keeps only the origin of rootUrl; a path (the proxy's /v1/proxy/google/) is put back here.
  const fetchImplementation =
    root.pathname === '/' ? undefined : (url, init) => fetch(String(url).replace(root.origin, rootUrl.replace(/\/$/, '')), init);
  return google.calendar({ version: 'v3', rootUrl, auth, headers: credentials.headers, fetchImplementation });
}

const templates = new Map();

/** Express view engine for Mustache templates, with views/layout.mustache around each page. */
function renderMustache(path, data, callback) {
  const load = async (file) => {
    if (!templates.has(file)) templates.set(file, await readFile(file, 'utf8'));
    return templates.get(file);
  };
  Promise.all([load(path), load(join(here, 'views', 'layout.mustache'))])
    .then(([page, layout]) => callback(null, Mustache.render(layout, data, { content: page })))
    .catch(callback);
}
