import type { FastifyInstance } from 'fastify';
import { NotFound, type EventType } from '@everyauth/core';
import { WebhookNotFound } from '../errors.js';
import { SCOPES, createApiKey, deleteApiKey, listApiKeys, type Scope } from '../api-keys.js';
import type { ServerContext } from '../context.js';
import { apiKeySummary, delivery, errorResponses, idParam, pageQuery, webhook } from '../schemas.js';
import { WEBHOOK_EVENTS } from '../webhooks.js';

/** API keys and webhooks: `admin` scope only. */
export function adminRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get(
    '/v1/api-keys',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['api keys'],
        summary: 'List API keys (never the keys themselves)',
        response: { 200: { type: 'array', items: apiKeySummary }, ...errorResponses },
      },
    },
    async () => listApiKeys(ctx.store),
  );

  app.post<{ Body: { name: string; scopes: Scope[] } }>(
    '/v1/api-keys',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['api keys'],
        summary: 'Create an API key; the key is in this response only',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'scopes'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 100 },
            scopes: { type: 'array', minItems: 1, items: { type: 'string', enum: [...SCOPES] } },
          },
        },
        response: { 201: { type: 'object', properties: { key: { type: 'string' }, ...apiKeySummary.properties } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await createApiKey(ctx.store, request.body);
      return reply.code(201).send({ ...created.summary, key: created.key });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/api-keys/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['api keys'], summary: 'Delete an API key', params: { type: 'object', properties: { id: idParam } } },
    },
    async (request, reply) => {
      if (!(await deleteApiKey(ctx.store, request.params.id))) throw new NotFound('api_key', request.params.id);
      ctx.keys.forget(request.params.id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/webhooks',
    {
      config: { access: 'admin' },
      schema: { tags: ['webhooks'], summary: 'List webhooks', response: { 200: { type: 'array', items: webhook }, ...errorResponses } },
    },
    async () => ctx.webhooks.list(),
  );

  app.post<{ Body: { url: string; events?: EventType[] } }>(
    '/v1/webhooks',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'Add a webhook; its signing secret is in this response only',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            events: { type: 'array', items: { type: 'string', enum: WEBHOOK_EVENTS } },
          },
        },
        response: { 201: { type: 'object', properties: { secret: { type: 'string' }, ...webhook.properties } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { webhook: created, secret } = await ctx.webhooks.create(request.body);
      return reply.code(201).send({ ...created, secret });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'Delete a webhook and its deliveries',
        params: { type: 'object', properties: { id: idParam } },
      },
    },
    async (request, reply) => {
      if (!(await ctx.webhooks.delete(request.params.id))) {
        throw new WebhookNotFound(request.params.id);
      }
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { after?: string; count?: number } }>(
    '/v1/webhooks/:id/deliveries',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: "A webhook's deliveries: status, attempts, the receiver's last answer",
        params: { type: 'object', properties: { id: idParam } },
        querystring: { type: 'object', additionalProperties: false, properties: { after: idParam, count: pageQuery.count } },
        response: { 200: { type: 'array', items: delivery }, ...errorResponses },
      },
    },
    async (request) => {
      await ctx.webhooks.get(request.params.id);
      return ctx.webhooks.deliveries(request.params.id, request.query);
    },
  );

  app.post<{ Params: { id: string; deliveryId: string } }>(
    '/v1/webhooks/:id/deliveries/:deliveryId/replay',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'Send a failed delivery again (same delivery id and idempotency key)',
        params: { type: 'object', properties: { id: idParam, deliveryId: idParam } },
        response: { 200: delivery, ...errorResponses },
      },
    },
    async (request) => ctx.webhooks.replay(request.params.id, request.params.deliveryId),
  );
}
