import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AuthorizationFailed,
  EveryAuthError,
  InvalidInput,
  randomToken,
  sha256,
  type BeginAuthorization,
  type Tags,
} from '@everyauth/core';
import type { ServerContext } from '../context.js';
import { formSession, hostedFormRoutes, readCookie } from './hosted-form.js';
import { beginInput, errorResponses, serviceIdParam } from '../schemas.js';

interface BeginBody {
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags?: Tags;
  finishedUrl?: string;
}

/** What the start link carries, sealed by the vault so any replica can open it and nobody can alter it. */
export interface StartTicket {
  /** The provider's authorization URL. */
  u: string;
  /** The browser-binding secret the start route sets as a cookie. */
  b: string;
  /** `state`, which names the cookie so parallel flows in one browser do not collide. */
  s: string;
  serviceId: string;
  /** Expiry, epoch ms. */
  e: number;
}

const TICKET_AAD = 'hosted-session';

const cookieName = (state: string) => `everyauth_flow_${sha256(state).slice(0, 16)}`;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function page(reply: FastifyReply, status: number, title: string, detail: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'")
    .send(
      `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p>`,
    );
}

/**
 * Binds the flow to this browser with a cookie only the callback path sees, then sends the browser
 * to the provider. Shared by the hosted session link, reconnect links and the connect page.
 */
export function sendToProvider(ctx: ServerContext, reply: FastifyReply, ticket: StartTicket): FastifyReply {
  const path = new URL(ctx.broker.redirectUrl(ticket.serviceId)).pathname;
  const maxAge = Math.max(1, Math.floor((ticket.e - Date.now()) / 1000));
  const secure = ctx.publicUrl.startsWith('https:');
  // SameSite=Lax: the provider's redirect back is a top-level GET navigation, which carries Lax cookies.
  const cookie = `${cookieName(ticket.s)}=${ticket.b}; Path=${path}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
  return reply.header('set-cookie', cookie).header('cache-control', 'no-store').redirect(ticket.u, 302);
}

/** Starts an authorization bound to a new browser secret; what {@link sendToProvider} needs. */
export async function beginBound(ctx: ServerContext, input: BeginAuthorization): Promise<StartTicket> {
  const binding = randomToken();
  const started = await ctx.broker.beginAuthorization({ ...input, browserBinding: binding });
  return { u: started.url, b: binding, s: started.state, serviceId: input.serviceId, e: Date.parse(started.expiresAt) };
}

/**
 * The hosted authorization flow: the app asks for a session (API key), sends the user to the link
 * it gets; the start route binds the flow to that browser with a cookie (RFC 9700 §4.7) and
 * redirects to the provider; the provider comes back to `/{serviceId}/callback`, which completes
 * the flow and redirects to finishedUrl (with error and error_description on failure).
 */
export function hostedRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const secure = ctx.publicUrl.startsWith('https:');
  hostedFormRoutes(app, ctx);

  app.post<{ Body: BeginBody }>(
    '/v1/sessions',
    {
      config: { access: 'tokens:read' },
      schema: {
        tags: ['authorization'],
        summary: 'Start a hosted authorization: returns the URL to send the user to',
        body: beginInput,
        response: { 201: { type: 'object', properties: { url: { type: 'string' }, expiresAt: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const form = await formSession(ctx, request.body);
      if (form) return reply.code(201).send(form);
      const ticket = await beginBound(ctx, request.body);
      const sealed = ctx.vault.seal(JSON.stringify(ticket), TICKET_AAD);
      return reply.code(201).send({ url: `${ctx.publicUrl}/v1/sessions/start?t=${sealed}`, expiresAt: new Date(ticket.e).toISOString() });
    },
  );

  app.get<{ Querystring: { t: string } }>(
    '/v1/sessions/start',
    {
      config: { access: 'public', rateLimit: false },
      schema: {
        tags: ['authorization'],
        summary: 'Hosted: binds the flow to the browser and redirects to the provider',
        querystring: { type: 'object', required: ['t'], properties: { t: { type: 'string', maxLength: 8192 } } },
      },
    },
    async (request, reply) => {
      let ticket: StartTicket;
      try {
        ticket = JSON.parse(ctx.vault.open(request.query.t, TICKET_AAD)) as StartTicket;
      } catch {
        return page(
          reply,
          400,
          'Invalid authorization link',
          'This link was not made by this EveryAuth server, or it was altered. Start again from the application.',
        );
      }
      if (ticket.e <= Date.now()) return page(reply, 400, 'Authorization link expired', 'Start again from the application.');
      return sendToProvider(ctx, reply, ticket);
    },
  );

  app.get<{ Params: { serviceId: string }; Querystring: Record<string, string | string[]> }>(
    '/:serviceId/callback',
    {
      config: { access: 'public', rateLimit: false },
      schema: {
        tags: ['authorization'],
        summary: "Hosted: the provider's redirect back (the service's redirect URL)",
        params: { type: 'object', properties: { serviceId: serviceIdParam } },
      },
    },
    async (request, reply) => completeHosted(ctx, request, reply, secure),
  );

  // ---- the same steps for RemoteBroker, whose caller binds the browser itself ----

  app.post<{ Body: BeginBody & { browserBinding?: string } }>(
    '/v1/authorizations',
    {
      config: { access: 'tokens:read' },
      schema: {
        tags: ['authorization'],
        summary: "Start an authorization; returns the provider's URL (the caller handles the browser)",
        body: {
          ...beginInput,
          properties: { ...beginInput.properties, browserBinding: { type: 'string', minLength: 16, maxLength: 256 } },
        },
        response: {
          201: { type: 'object', properties: { url: { type: 'string' }, state: { type: 'string' }, expiresAt: { type: 'string' } } },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => reply.code(201).send(await ctx.broker.beginAuthorization(request.body)),
  );

  app.post<{ Body: { serviceId: string; query: string; browserBinding?: string } }>(
    '/v1/authorizations/complete',
    {
      config: { access: 'tokens:read' },
      schema: {
        tags: ['authorization'],
        summary: "Complete an authorization with the callback's query string",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['serviceId', 'query'],
          properties: {
            serviceId: serviceIdParam,
            query: { type: 'string', maxLength: 8192 },
            browserBinding: { type: 'string', maxLength: 256 },
          },
        },
      },
    },
    async (request) => {
      const { serviceId, query, browserBinding } = request.body;
      return ctx.broker.completeAuthorization(serviceId, new URLSearchParams(query), { browserBinding });
    },
  );
}

async function completeHosted(
  ctx: ServerContext,
  request: FastifyRequest<{ Params: { serviceId: string } }>,
  reply: FastifyReply,
  secure: boolean,
) {
  const raw = request.raw.url ?? '';
  const query = new URLSearchParams(raw.includes('?') ? raw.slice(raw.indexOf('?') + 1) : '');
  const state = query.get('state');
  const name = state ? cookieName(state) : undefined;
  if (name) {
    const path = new URL(ctx.broker.redirectUrl(request.params.serviceId)).pathname;
    reply.header('set-cookie', `${name}=; Path=${path}; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
  }
  reply.header('cache-control', 'no-store');
  // The callback URL holds the code and state: no page reached from it may see it in a Referer (RFC 9700 §4.2.4).
  reply.header('referrer-policy', 'no-referrer');
  try {
    const done = await ctx.broker.completeAuthorization(request.params.serviceId, query, {
      browserBinding: name ? readCookie(request.headers.cookie, name) : undefined,
    });
    if (done.finishedUrl) return reply.redirect(done.finishedUrl, 303);
    return page(reply, 200, 'Authorization complete', 'You can close this window and return to the application.');
  } catch (err) {
    if (err instanceof AuthorizationFailed) {
      if (err.context.finishedUrl) return reply.redirect(err.context.finishedUrl, 303);
      return page(reply, 400, `Authorization failed: ${err.error}`, err.description);
    }
    if (err instanceof InvalidInput) return page(reply, 400, 'Authorization failed', err.message);
    request.log.error({ code: (err as EveryAuthError).code }, 'hosted callback failed');
    return page(reply, 500, 'Authorization failed', 'The server could not complete the authorization. Try again later.');
  }
}
