import { createHash, randomBytes } from 'node:crypto';
import asana from 'asana';
import { google } from 'googleapis';
import { authorizeOverHttp } from '@everyauth/oauth-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIns, type StandIns } from '../index.js';

const CLIENT = { clientId: 'app', clientSecret: 'secret', redirectUris: ['http://127.0.0.1:9/cb'] };

let standIns: StandIns;
beforeAll(async () => {
  standIns = await startStandIns();
  await standIns.asana.oauth.addClient(CLIENT);
  await standIns.google.oauth.addClient(CLIENT);
});
afterAll(() => standIns?.close());

/** Consents on the stand-in's page as a browser form would, then exchanges the code like a client. */
async function codeFlow(base: string, paths: { authorize: string; token: string }, params: Record<string, string>) {
  const verifier = randomBytes(32).toString('base64url');
  const query = {
    client_id: CLIENT.clientId,
    redirect_uri: CLIENT.redirectUris[0]!,
    response_type: 'code',
    state: 's1',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...params,
  };
  const callback = await authorizeOverHttp(base, `${base}${paths.authorize}?${new URLSearchParams(query)}`, {
    answer: (page, html) => {
      expect(html).toContain('id="allow"');
      return { url: page, form: { login_email: 'kim@example.com', login_name: 'Kim', decision: 'allow' } };
    },
  });
  const token = await fetch(`${base}${paths.token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code')!,
      redirect_uri: CLIENT.redirectUris[0]!,
      code_verifier: verifier,
      client_id: CLIENT.clientId,
      client_secret: CLIENT.clientSecret,
    }),
  });
  return { callback, status: token.status, body: (await token.json()) as Record<string, any> };
}

describe('the Asana stand-in', () => {
  const paths = { authorize: '/-/oauth_authorize', token: '/-/oauth_token' };

  it("answers the token request in Asana's shape, with the user as `data`, and an ID token with openid", async () => {
    const { body } = await codeFlow(standIns.asana.url, paths, { scope: 'openid email profile default' });
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 3600, data: { name: 'Kim', email: 'kim@example.com' } });
    expect(body.data.gid).toMatch(/^\d+$/);
    expect(body.refresh_token).toBeTruthy();
    const claims = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ iss: standIns.asana.url, aud: 'app', sub: body.data.gid, email: 'kim@example.com' });
  });

  it('serves the official SDK: the user, and their tasks with opt_fields', async () => {
    const { body } = await codeFlow(standIns.asana.url, paths, { scope: 'default' });
    const client = new asana.ApiClient();
    client.basePath = `${standIns.asana.url}/api/1.0`;
    client.authentications.token!.accessToken = body.access_token;
    const me = await new asana.UsersApi(client).getUser('me', {});
    expect(me.data).toMatchObject({ gid: body.data.gid, email: 'kim@example.com', resource_type: 'user' });
    const tasks = await new asana.TasksApi(client).getTasks({
      workspace: me.data.workspaces[0].gid,
      assignee: 'me',
      opt_fields: 'name,due_on',
    });
    expect(tasks.data.length).toBeGreaterThan(0);
    expect(Object.keys(tasks.data[0]).sort()).toEqual(['due_on', 'gid', 'name']);

    client.authentications.token!.accessToken = 'wrong';
    await expect(new asana.UsersApi(client).getUser('me', {})).rejects.toMatchObject({ status: 401 });
  });
});

describe('the Google stand-in', () => {
  const paths = { authorize: '/o/oauth2/v2/auth', token: '/token' };

  it('issues a refresh token only with access_type=offline, and on a repeat consent only with prompt=consent', async () => {
    const scope = 'openid email https://www.googleapis.com/auth/calendar.events';
    const online = await codeFlow(standIns.google.url, paths, { scope });
    expect(online.body).not.toHaveProperty('refresh_token');
    expect(online.callback.searchParams.get('iss')).toBe(standIns.google.url);
    expect(online.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3599,
      scope: 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/calendar.events',
    });
    expect(online.body.id_token).toBeTruthy();
    const repeat = await codeFlow(standIns.google.url, paths, { scope, access_type: 'offline' });
    expect(repeat.body).not.toHaveProperty('refresh_token');
    const consent = await codeFlow(standIns.google.url, paths, { scope, access_type: 'offline', prompt: 'consent' });
    expect(consent.body.refresh_token).toBeTruthy();
  });

  it('adds an event with googleapis events.quickAdd and lists it', async () => {
    const { body } = await codeFlow(standIns.google.url, paths, { scope: 'https://www.googleapis.com/auth/calendar.events' });
    const auth = new google.auth.OAuth2();
    auth.setCredentials({ access_token: body.access_token });
    const calendar = google.calendar({ version: 'v3', rootUrl: `${standIns.google.url}/`, auth });
    const { data } = await calendar.events.quickAdd({ calendarId: 'primary', text: 'Plan the sprint on 2030-01-15' });
    expect(data).toMatchObject({
      kind: 'calendar#event',
      summary: 'Plan the sprint',
      start: { date: '2030-01-15' },
      end: { date: '2030-01-16' },
    });
    const listed = await calendar.events.list({ calendarId: 'primary' });
    expect(listed.data.items?.map((e) => e.id)).toContain(data.id);
    expect(standIns.google.calendars.get('kim@example.com')).toHaveLength(1);
  });
});
