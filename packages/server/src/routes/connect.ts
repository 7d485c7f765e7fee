import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256, withQuery, type IdentitySummary } from '@everyauth/core';
import type { ConnectPageService } from '@everyauth/core';
import { connectPage, sendPage, sendRefusal } from '../connect-page.js';
import {
  CONNECT_DEFAULT_LIFETIME_MINUTES,
  CONNECT_MAX_LIFETIME_MINUTES,
  ConnectSessions,
  type ConnectSession,
  type ConnectSessionInput,
} from '../connect-sessions.js';
import type { ServerContext } from '../context.js';
import { beginInput, errorResponses, serviceIdParam } from '../schemas.js';
import { formSession, readCookie } from './hosted-form.js';
import { beginBound, sendToProvider } from './hosted.js';

const tokenQuery = {
  type: 'object',
  required: ['t'],
  properties: { t: { type: 'string', maxLength: 128 } },
} as const;

const cookieName = (token: string) => `everyauth_connect_${sha256(token).slice(0, 16)}`;

/**
 * Connect links: the app asks for one (API key) and sends its user there; the page lists the
 * allowed services with their state and runs each flow (a reconnect for an identity that needs
 * one), coming back to the page after each; Done ends the link and goes to the app's finishedUrl.
 */
export function connectRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const sessions = new ConnectSessions(ctx.store, ctx.broker);
  const secure = ctx.publicUrl.startsWith('https:');
  const config = { access: 'public' as const, rateLimit: false as const };

  app.post<{ Body: ConnectSessionInput }>(
    '/v1/connect-sessions',
    {
      config: { access: 'tokens:read' },
      schema: {
        tags: ['authorization'],
        summary: 'A connect link for one user: a page listing the allowed services with their state, connecting each',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['userId', 'allowedServices'],
          properties: {
            userId: beginInput.properties.userId,
            tenantId: beginInput.properties.tenantId,
            tags: beginInput.properties.tags,
            allowedServices: { type: 'array', minItems: 1, maxItems: 50, items: serviceIdParam },
            finishedUrl: beginInput.properties.finishedUrl,
            lifetimeMinutes: {
              type: 'integer',
              minimum: 1,
              maximum: CONNECT_MAX_LIFETIME_MINUTES,
              description: `Default ${CONNECT_DEFAULT_LIFETIME_MINUTES}; at most a day`,
            },
          },
        },
        response: {
          201: { type: 'object', properties: { token: { type: 'string' }, url: { type: 'string' }, expiresAt: { type: 'string' } } },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { token, expiresAt } = await sessions.create(request.body);
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ token, url: `${ctx.publicUrl}/connect?t=${token}`, expiresAt: new Date(expiresAt).toISOString() });
    },
  );

  /** Opens the link for this browser (binding it if it is the first), or answers the refusal page; undefined then. */
  async function open(request: FastifyRequest<{ Querystring: { t: string } }>, reply: FastifyReply): Promise<ConnectSession | undefined> {
    const token = request.query.t;
    const name = cookieName(token);
    const opened = await sessions.open(token, readCookie(request.headers.cookie, name));
    if (!opened.ok) {
      sendRefusal(reply, opened.reason);
      return undefined;
    }
    if (opened.binding) {
      const maxAge = Math.max(1, Math.floor((opened.session.expiresAt - Date.now()) / 1000));
      // Lax: the provider's redirect back to the callback, and from there here, are top-level navigations.
      reply.header(
        'set-cookie',
        `${name}=${opened.binding}; Path=/connect; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
      );
    }
    return opened.session;
  }

  app.get<{ Querystring: { t: string; error?: string; error_description?: string; serviceId?: string } }>(
    '/connect',
    { config, schema: { hide: true, querystring: { ...tokenQuery, properties: { ...tokenQuery.properties } } } },
    async (request, reply) => {
      const session = await open(request, reply);
      if (!session) return reply;
      const states = await Promise.all(session.allowedServices.map((id) => serviceState(ctx, session, id)));
      const { error, error_description: description, serviceId } = request.query;
      const name = states.find((s) => s.serviceId === serviceId)?.name ?? serviceId;
      const message = error
        ? { kind: 'error' as const, text: `${name ?? 'The service'} was not connected: ${description ?? error}` }
        : serviceId
          ? { kind: 'ok' as const, text: `${name} is connected.` }
          : undefined;
      return connectPage(reply, request.query.t, states, message);
    },
  );

  app.get<{ Querystring: { t: string; service: string } }>(
    '/connect/start',
    {
      config,
      schema: {
        hide: true,
        querystring: { ...tokenQuery, required: ['t', 'service'], properties: { ...tokenQuery.properties, service: serviceIdParam } },
      },
    },
    async (request, reply) => {
      const session = await open(request, reply);
      if (!session) return reply;
      const serviceId = request.query.service;
      if (!session.allowedServices.includes(serviceId))
        return sendPage(reply, 400, 'Not offered here', `<p class="message error">This link does not offer that service.</p>`);
      const back = `/connect?t=${encodeURIComponent(request.query.t)}`;
      // A service whose provider takes a form (API key, basic, service account): the hosted credential form, then back here.
      const form = await formSession(ctx, {
        serviceId,
        userId: session.userId,
        tenantId: session.tenantId,
        tags: session.tags,
        finishedUrl: back,
      });
      if (form) return reply.header('cache-control', 'no-store').redirect(form.url, 303);
      const existing = await identityOf(ctx, session, serviceId);
      const reconnect = existing && existing.status !== 'active' ? { identityId: existing.id } : undefined;
      const ticket = await beginBound(ctx, {
        serviceId,
        userId: session.userId,
        tenantId: session.tenantId,
        ...(reconnect ? { reconnect } : { tags: session.tags }),
        // Back to this page after the callback, which appends serviceId (or error and error_description).
        finishedUrl: back,
      });
      return sendToProvider(ctx, reply, ticket);
    },
  );

  app.get<{ Querystring: { t: string } }>(
    '/connect/finish',
    { config, schema: { hide: true, querystring: tokenQuery } },
    async (request, reply) => {
      const session = await open(request, reply);
      if (!session) return reply;
      await sessions.finish(request.query.t);
      reply.header(
        'set-cookie',
        `${cookieName(request.query.t)}=; Path=/connect; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
      );
      if (session.finishedUrl) {
        return reply
          .header('cache-control', 'no-store')
          .header('referrer-policy', 'no-referrer')
          .redirect(withQuery(session.finishedUrl, { userId: session.userId, tenantId: session.tenantId }), 303);
      }
      return sendPage(reply, 200, 'All done', '<p class="message ok">You can close this window and return to the application.</p>');
    },
  );
}

/** The user's identity on a service under this link's tenant (exactly: no tenant means none). */
async function identityOf(ctx: ServerContext, session: ConnectSession, serviceId: string): Promise<IdentitySummary | undefined> {
  const page = await ctx.broker.listIdentities(serviceId, {
    userId: session.userId,
    ...(session.tenantId ? { tenantId: session.tenantId } : {}),
  });
  return page.items.find((i) => i.tenantId === session.tenantId);
}

async function serviceState(ctx: ServerContext, session: ConnectSession, serviceId: string): Promise<Omit<ConnectPageService, 'href'>> {
  const service = await ctx.broker.getService(serviceId).catch(() => undefined);
  const name = service
    ? await ctx.broker.getProvider(service.providerId).then(
        (p) => p.name,
        () => serviceId,
      )
    : serviceId;
  const identity = await identityOf(ctx, session, serviceId);
  const account = identity ? (identity.profile.email ?? identity.profile.name ?? undefined) : undefined;
  return { serviceId, name: name === serviceId || !service ? serviceId : `${name} (${serviceId})`, status: identity?.status, account };
}
