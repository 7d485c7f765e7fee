/**
 * JSON schemas at the edge: Fastify validates requests against them (a failure names the field)
 * and serializes responses through them; @fastify/swagger turns them into the OpenAPI document.
 * Shapes mirror packages/core/src/broker.ts.
 */
const str = { type: 'string' } as const;
// No control characters: PostgreSQL cannot hold NUL, and ids are never meant to carry them.
const id = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$' } as const;
const serviceId = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'Service id' } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const freeObject = { type: 'object', additionalProperties: true } as const;
const isoTime = { type: 'string', format: 'date-time' } as const;

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'A stable code for programs' },
    message: str,
    retryable: { type: 'boolean' },
    type: { type: 'string', description: 'The typed error class, for clients that rebuild it' },
    field: str,
  },
  additionalProperties: true,
} as const;

export const providerSummary = {
  type: 'object',
  properties: { id: str, name: str, custom: { type: 'boolean' }, docs: str },
} as const;

export const service = {
  type: 'object',
  properties: {
    id: str,
    providerId: str,
    clientId: str,
    hasClientSecret: { type: 'boolean' },
    scopes: { type: 'array', items: str },
    params: stringMap,
    variables: stringMap,
    redirectUrl: str,
    apiBaseUrls: { type: 'array', items: str },
    createdAt: isoTime,
    updatedAt: isoTime,
  },
} as const;

export const serviceInput = {
  type: 'object',
  additionalProperties: false,
  properties: {
    providerId: { type: 'string', minLength: 1, maxLength: 64 },
    clientId: { type: 'string', minLength: 1, maxLength: 1024 },
    clientSecret: { anyOf: [{ type: 'string', minLength: 1, maxLength: 4096 }, { type: 'null' }] },
    scopes: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 512 } },
    params: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 2048 } },
    variables: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 512 } },
    apiBaseUrls: {
      anyOf: [{ type: 'array', minItems: 1, maxItems: 20, items: { type: 'string', minLength: 1, maxLength: 2048 } }, { type: 'null' }],
    },
  },
} as const;

export const identitySummary = {
  type: 'object',
  properties: {
    id: str,
    serviceId: str,
    userId: str,
    tenantId: str,
    tags: stringMap,
    status: { type: 'string', enum: ['active', 'needs_reauth', 'dead', 'revoked'] },
    profile: freeObject,
    scope: str,
    expiresAt: isoTime,
    lastRefreshAt: isoTime,
    metadata: freeObject,
    failingSince: isoTime,
    lastCheckedAt: isoTime,
    healthy: { type: 'boolean' },
    createdAt: isoTime,
    updatedAt: isoTime,
  },
} as const;

export const freshIdentity = {
  type: 'object',
  properties: {
    accessToken: str,
    credential: freeObject,
    expiresAt: isoTime,
    identityId: str,
    serviceId: str,
    userId: str,
    tenantId: str,
    tags: stringMap,
    profile: freeObject,
    native: freeObject,
  },
} as const;

export const brokerEvent = {
  type: 'object',
  properties: {
    id: str,
    type: str,
    serviceId: str,
    identityId: str,
    userId: str,
    tenantId: str,
    tags: stringMap,
    at: isoTime,
    data: freeObject,
  },
} as const;

const tag = { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}=', maxLength: 400, description: 'A tag to match, `key=value`' } as const;

/** userId / tenantId / tag=k=v (repeatable) / status: the identity filter as query parameters. */
export const filterQuery = {
  userId: id,
  tenantId: id,
  tag: { type: 'array', maxItems: 32, items: tag },
  status: { type: 'string', enum: ['active', 'needs_reauth', 'dead', 'revoked'] },
} as const;

export const pageQuery = {
  next: { type: 'string', maxLength: 512 },
  count: { type: 'integer', minimum: 1, maximum: 1000 },
} as const;

export const beginInput = {
  type: 'object',
  additionalProperties: false,
  required: ['serviceId', 'userId'],
  properties: {
    serviceId,
    userId: id,
    tenantId: id,
    tags: { type: 'object', maxProperties: 32, additionalProperties: { type: 'string', minLength: 1, maxLength: 256 } },
    finishedUrl: { type: 'string', minLength: 1, maxLength: 2048 },
  },
} as const;

export const apiKeySummary = {
  type: 'object',
  properties: { id: str, name: str, scopes: { type: 'array', items: str }, createdAt: isoTime },
} as const;

export const webhook = {
  type: 'object',
  properties: { id: str, url: str, events: { type: 'array', items: str }, createdAt: isoTime },
} as const;

export const delivery = {
  type: 'object',
  properties: {
    id: str,
    webhookId: str,
    eventId: str,
    eventType: str,
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    nextAttemptAt: isoTime,
    responseStatus: { type: 'integer' },
    lastError: str,
    createdAt: isoTime,
    updatedAt: isoTime,
  },
} as const;

export const errorResponses = {
  '4xx': { $ref: 'Error#' },
  '5xx': { $ref: 'Error#' },
} as const;

export { serviceId as serviceIdParam, id as idParam };

/** POST /v1/identities: typed-in fields or imported tokens for one user. Values are checked by the broker, never echoed. */
export const putIdentityBody = {
  type: 'object',
  additionalProperties: false,
  required: ['serviceId', 'userId'],
  properties: {
    serviceId: str,
    userId: str,
    tenantId: str,
    tags: stringMap,
    fields: { type: 'object', additionalProperties: { type: 'string', maxLength: 8192 }, maxProperties: 32 },
    tokens: {
      type: 'object',
      additionalProperties: false,
      properties: {
        accessToken: { type: 'string', maxLength: 16384 },
        refreshToken: { type: 'string', maxLength: 16384 },
        expiresAt: isoTime,
        scope: { type: 'string', maxLength: 4096 },
      },
    },
  },
} as const;
