/**
 * Express 4 with authorize() on a Router, so no app sees it mounted and the app installs
 * everyauth.callbacks() itself: an async handler with no `next` still reaches the error handlers.
 * A file of its own, because the rule is set on Express 4's router once per process: here, no
 * app has mounted authorize() before, so only callbacks() can have set it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type express5 from 'express';
import { createEveryAuth, type EveryAuth } from '@everyauth/express';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { startTestBroker, type TestBroker } from '../../core/test/support/broker.js';
import { listen } from './support/app.js';

// @ts-expect-error: Express 4 is installed under an alias without its own types; its API is the one used here.
import express4Module from 'express4';
const express4 = express4Module as typeof express5;

let server: AuthServer;
let t: TestBroker;
let everyauth: EveryAuth;
let http: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  server = await startAuthServer({ clients: [] });
  everyauth = createEveryAuth();
  const app = express4();
  const router = express4.Router();
  router.use('/local/authorize/:userId', everyauth.authorize('local', { mapToUserId: (req) => req.params.userId }));
  app.use(router);
  app.use(everyauth.callbacks());
  app.get('/calendar', async (req, res) => {
    const identity = await everyauth.getIdentity('local', String(req.query.userId));
    res.json({ hasToken: Boolean(identity?.accessToken) });
  });
  app.use(everyauth.errorHandler());
  http = await listen(app);
  t = await startTestBroker(server, { baseUrl: http.origin });
  everyauth.config({ broker: t.broker });
});
afterAll(async () => {
  await http?.close();
  await t?.close();
  await server?.close();
});

it('answers the rejection of an async handler without next through everyauth.errorHandler()', async () => {
  // An empty user id: getIdentity rejects with InvalidInput, which the error handler answers with 400.
  const response = await fetch(`${http.origin}/calendar?userId=`, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  expect(response.status).toBe(400);
  expect(await response.json()).toMatchObject({ error: 'invalid_input' });
});
