import type { FastifyInstance } from 'fastify';
import { AuthorizationFailed, EveryAuthError, NotFound, type IdentityUpdate } from '@everyauth/core';
import type { ServerContext } from '../context.js';
import { openReconnectTicket, reconnectLink } from '../reconnect-links.js';
import { errorResponses, idParam, identitySummary } from '../schemas.js';
import { beginBound, page, sendToProvider } from './hosted.js';

const identityParams = { type: 'object', properties: { identityId: idParam } } as const;

/** An identity over time: its tags and metadata, health checks, and reconnect links. */
export function lifecycleRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { broker } = ctx;

  app.patch<{ Params: { identityId: string }; Body: IdentityUpdate }>(
    '/v1/identities/:identityId',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['identities'],
        summary: "Replace an identity's tags and/or its metadata (a JSON object of at most 4 KiB)",
        params: identityParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            tags: { type: 'object', maxProperties: 32, additionalProperties: { type: 'string', minLength: 1, maxLength: 256 } },
            metadata: { type: 'object', additionalProperties: true },
          },
        },
        response: { 200: identitySummary, ...errorResponses },
      },
    },
    async (request) => {
      const updated = await broker.updateIdentity(request.params.identityId, request.body);
      if (!updated) throw new NotFound('identity', request.params.identityId);
      return updated;
    },
  );

  app.post<{ Params: { identityId: string } }>(
    '/v1/identities/:identityId/check',
    {
      config: { access: 'tokens:read' },
      schema: {
        tags: ['identities'],
        summary: "Run the provider's test request with the identity's token; records lastCheckedAt and healthy",
        params: identityParams,
        response: {
          200: {
            type: 'object',
            properties: {
              identityId: { type: 'string' },
              healthy: { type: 'boolean' },
              checkedAt: { type: 'string' },
              status: { type: 'integer' },
              reason: { type: 'string' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => broker.checkIdentity(request.params.identityId),
  );

  app.post<{ Params: { identityId: string }; Body: { finishedUrl?: string; allowAccountChange?: boolean; lifetimeMinutes?: number } }>(
    '/v1/identities/:identityId/reconnect',
    {
      config: { access: 'tokens:read' },
      schema: {
        tags: ['identities'],
        summary: 'A link that re-authorizes this same identity (same id, tags and metadata; new tokens)',
        params: identityParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            finishedUrl: { type: 'string', minLength: 1, maxLength: 2048 },
            allowAccountChange: { type: 'boolean', description: 'Accept a grant for another account at the provider than the stored one' },
            lifetimeMinutes: { type: 'integer', minimum: 1, maximum: 7 * 24 * 60 },
          },
        },
        response: { 201: { type: 'object', properties: { url: { type: 'string' }, expiresAt: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const found = await broker.findIdentityById(request.params.identityId);
      if (!found) throw new NotFound('identity', request.params.identityId);
      const body = request.body ?? {};
      // Checked now so a bad finishedUrl is the caller's 400, not the user's broken link later.
      if (body.finishedUrl !== undefined) broker.checkFinishedUrl(body.finishedUrl);
      const link = reconnectLink(ctx.publicUrl, ctx.vault, found.id, {
        finishedUrl: body.finishedUrl,
        allowAccountChange: body.allowAccountChange,
        lifetimeMs: body.lifetimeMinutes === undefined ? undefined : body.lifetimeMinutes * 60_000,
      });
      return reply.code(201).send(link);
    },
  );

  app.get<{ Querystring: { t: string } }>(
    '/v1/reconnect',
    {
      config: { access: 'public', rateLimit: false },
      schema: {
        tags: ['identities'],
        summary: 'Hosted: starts the reconnect of one identity in this browser',
        querystring: { type: 'object', required: ['t'], properties: { t: { type: 'string', maxLength: 8192 } } },
      },
    },
    async (request, reply) => {
      const ticket = openReconnectTicket(ctx.vault, request.query.t);
      if (!ticket) return page(reply, 400, 'Invalid reconnect link', 'This link was not made by this EveryAuth server, or it was altered.');
      if (ticket.e <= Date.now()) return page(reply, 400, 'Reconnect link expired', 'Ask the application for a new link.');
      const identity = await broker.findIdentityById(ticket.i);
      if (!identity)
        return page(reply, 404, 'Nothing to reconnect', 'This connection was deleted. Connect the service anew from the application.');
      try {
        const started = await beginBound(ctx, {
          serviceId: identity.serviceId,
          userId: identity.userId,
          tenantId: identity.tenantId,
          finishedUrl: ticket.f,
          reconnect: { identityId: identity.id, allowAccountChange: ticket.a === 1 },
        });
        return sendToProvider(ctx, reply, started);
      } catch (err) {
        if (err instanceof EveryAuthError && !(err instanceof AuthorizationFailed) && err.status < 500)
          return page(reply, 400, 'Cannot reconnect', err.message);
        throw err;
      }
    },
  );
}
