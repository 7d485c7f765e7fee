// The Asana OAuth tutorial's app on EveryAuth: the same routes (/, /clear, /get-tasks) and scopes,
// but no token in a cookie and no OAuth code here. The browser's cookie holds only this app's user id.
import { randomUUID } from 'node:crypto';
import asana from 'asana';
import cookieSession from 'cookie-session';
import express from 'express';
import everyauth from '@everyauth/express';

/**
 * @param {object} [options]
 * @param {string} [options.asanaUrl] Asana's origin (the stand-in's in demo mode).
 * @param {string} [options.sessionSecret] Signs the session cookie.
 */
export function createApp(options = {}) {
  const asanaUrl = options.asanaUrl ?? process.env.ASANA_URL ?? 'https://app.asana.com';
  const app = express();
  app.use(
    cookieSession({
      name: 'session',
      secret: options.sessionSecret ?? process.env.SESSION_SECRET ?? randomUUID(),
      sameSite: 'lax',
      httpOnly: true,
    }),
  );

  // The scopes (openid email profile default) are the service's: `everyauth service set asana --scope …`.
  app.use('/authorize', everyauth.authorize('asana', { finishedUrl: '/', mapToUserId: userIdOf }));

  // Create a default route
  app.get('/', async (req, res, next) => {
    if (req.query.error) {
      return res
        .status(400)
        .type('text')
        .send(`Error getting authorization: ${req.query.error}: ${req.query.error_description ?? ''}`);
    }
    try {
      const identity = await tokenOrAuthorize(req, res);
      if (!identity) return;
      // If we have a token, then go ahead and use it to fetch the user's profile information
      const response = await fetch(`${asanaUrl}/api/1.0/openid_connect/userinfo`, {
        headers: { Authorization: `Bearer ${identity.accessToken}` },
      });
      if (!response.ok) throw new Error(`Asana answered the userinfo request with HTTP ${response.status}`);
      const data = await response.json();
      res.type('text').send(`Hello ${data.name}, your email is ${data.email} and your picture is ${data.picture}`);
    } catch (err) {
      next(err);
    }
  });

  // Forget this user's Asana authorization
  app.get('/clear', async (req, res, next) => {
    try {
      if (req.session.userId) await everyauth.deleteIdentities('asana', { userId: req.session.userId }, { revoke: true });
      res.type('text').send('authorization cleared');
    } catch (err) {
      next(err);
    }
  });

  // Get the tasks assigned to the user in their first workspace
  app.get('/get-tasks', async (req, res, next) => {
    try {
      const identity = await tokenOrAuthorize(req, res);
      if (!identity) return;
      const client = new asana.ApiClient();
      client.basePath = `${asanaUrl}/api/1.0`;
      client.authentications.token.accessToken = identity.accessToken;
      // Before we get tasks, we need our workspace first
      const workspaces = await new asana.WorkspacesApi(client).getWorkspaces({});
      if (!workspaces.data.length) return res.type('text').send('No workspaces found');
      const tasks = await new asana.TasksApi(client).getTasks({
        assignee: 'me', // We can use 'me' as shortcut to get tasks related to us
        workspace: workspaces.data[0].gid, // For now, we just fetch all the tasks for the first workspace only
        opt_fields: 'completed,name', // We just need the name and whether the task is completed or not
      });
      res.type('text').send(tasks.data.map((task) => `${task.name} is ${task.completed ? 'done' : 'due'} \n`).join(''));
    } catch (err) {
      next(err);
    }
  });

  // EveryAuth's errors: a revoked grant sends the user to /authorize again, others get a page with their code.
  app.use(everyauth.errorHandler());
  return app;
}

function userIdOf(req) {
  if (!req.session.userId) req.session.userId = randomUUID();
  return req.session.userId;
}

/**
 * A fresh token for this browser's user, or a redirect to authorize on the first visit. When the
 * grant is gone, getIdentity throws ReauthorizationRequired and everyauth.errorHandler() redirects.
 */
async function tokenOrAuthorize(req, res) {
  const identity = req.session.userId && (await everyauth.getIdentity('asana', req.session.userId));
  if (identity) return identity;
  res.redirect('/authorize');
  return undefined;
}
