import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  AmbiguousIdentity,
  AuthorizationFailed,
  ConfigurationError,
  Conflict,
  CredentialRefused,
  DecryptionFailed,
  EveryAuthError,
  InvalidInput,
  NotFound,
  ProviderError,
  ProviderUnavailable,
  ReauthorizationRequired,
  RemoteBroker,
  ServerUnavailable,
  ProxyRefused,
  UpstreamFailed,
  registeredErrors,
} from '@everyauth/core';
import { errorResponses, errorSchema } from '../src/schemas.js';
import {
  DeliveryNotFailed,
  DeliveryNotFound,
  Forbidden,
  RateLimited,
  Unauthorized,
  WebhookNotFound,
  handleError,
  isStoreUnavailable,
} from '../src/errors.js';

/** One instance of every registered class, with every field it has set to something other than a default. */
const samples: Record<string, EveryAuthError> = {
  EveryAuthError: new EveryAuthError('lease_busy', 'The lease is held elsewhere; try again.', { status: 503, retryable: true }),
  InvalidInput: new InvalidInput('userId must not be an identity id.', 'userId'),
  ConfigurationError: new ConfigurationError('No master key: set EVERYAUTH_MASTER_KEY.'),
  NotFound: new NotFound('api_key', 'k_123'),
  Conflict: new Conflict('Service "crm" already exists.'),
  AmbiguousIdentity: new AmbiguousIdentity('crm', 3),
  DecryptionFailed: new DecryptionFailed('Unknown key id "abcd1234".'),
  AuthorizationFailed: new AuthorizationFailed('access_denied', 'The user said no.', {
    serviceId: 'crm',
    userId: 'u1',
    tenantId: 't1',
    finishedUrl: 'https://app.example/done',
  }),
  ReauthorizationRequired: new ReauthorizationRequired('crm', 'idn_1', 'u1', 't1', 'https://app.example/crm/authorize/u1', {
    identityStatus: 'dead',
    reconnectUrl: 'https://everyauth.example/v1/reconnect?t=sealed',
  }),
  ProviderUnavailable: new ProviderUnavailable('github', 'HTTP 503'),
  ProviderError: new ProviderError('github', 'invalid_client', 'HTTP 401'),
  CredentialRefused: new CredentialRefused('anthropic', 'invalid x-api-key [redacted]', 401),
  ServerUnavailable: new ServerUnavailable('http://upstream.internal:4000', 'timeout'),
  ProxyRefused: new ProxyRefused('target', 'The proxy sends credentials only under the base URLs: an absolute URL outside them.'),
  UpstreamFailed: new UpstreamFailed('asana', 'first_byte'),
  Unauthorized: new Unauthorized('The API key is not valid.'),
  Forbidden: new Forbidden('tokens:read'),
  RateLimited: new RateLimited(100, '1 minute'),
  WebhookNotFound: new WebhookNotFound('wh_1'),
  DeliveryNotFound: new DeliveryNotFound('wh_1', 'dlv_1'),
  DeliveryNotFailed: new DeliveryNotFailed('dlv_1', 'pending'),
};

/** What a caller can see of an error: its class, its own fields (code, status, kind …), message and JSON. */
const visible = (e: EveryAuthError) => ({ class: e.constructor, fields: { ...e }, message: e.message, json: e.toJSON() });

let app: FastifyInstance;
let remote: RemoteBroker;

beforeAll(async () => {
  app = Fastify();
  app.setErrorHandler(handleError);
  app.addSchema(errorSchema);
  // The route throws the sample the test names, through the server's one error handler and the
  // error response schema every route serializes with.
  app.get<{ Params: { name: string } }>('/v1/services/:name', { schema: { response: errorResponses } }, async (request) => {
    throw samples[request.params.name];
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  remote = new RemoteBroker({ server: `http://127.0.0.1:${port}`, apiKey: 'ea_test' });
});
afterAll(() => app?.close());

describe('the error registry', () => {
  it('has a sample here for every registered class (a new class needs one)', () => {
    expect(Object.keys(samples).sort()).toEqual([...registeredErrors().keys()].sort());
  });

  it('rebuilds every registered error, through the server body and RemoteBroker, into the same class with the same fields', async () => {
    for (const [name, sample] of Object.entries(samples)) {
      const rebuilt = await remote.getService(name).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(rebuilt, name).toBeInstanceOf(registeredErrors().get(name)!);
      expect(visible(rebuilt as EveryAuthError), name).toEqual(visible(sample));
    }
  });

  it('answers with the status the class declares and its JSON form as the body', async () => {
    for (const [name, sample] of Object.entries(samples)) {
      const response = await app.inject({ method: 'GET', url: `/v1/services/${name}` });
      expect(response.statusCode, name).toBe(sample.status);
      expect(response.json(), name).toEqual(JSON.parse(JSON.stringify(sample)));
    }
  });

  it('gives a body without a known type a plain EveryAuthError with its code, status and retryable', async () => {
    const { errorFromJSON } = await import('@everyauth/core');
    const e = errorFromJSON(429, { error: 'slow_down', message: 'Later.' });
    expect(e.constructor).toBe(EveryAuthError);
    expect({ code: e.code, status: e.status, retryable: e.retryable, message: e.message }).toEqual({
      code: 'slow_down',
      status: 429,
      retryable: true,
      message: 'Later.',
    });
    expect(errorFromJSON(502, 'not json', 'http://x').message).toBe('The EveryAuth server at http://x answered HTTP 502.');
  });
});

describe('isStoreUnavailable', () => {
  const coded = (code: string, cause?: unknown) => Object.assign(new Error('x', { cause }), { code });
  it('tells a lost database from a bug by code, also in the cause', () => {
    expect(isStoreUnavailable(coded('ECONNREFUSED'))).toBe(true);
    expect(isStoreUnavailable(coded('57P01'))).toBe(true); // admin_shutdown
    expect(isStoreUnavailable(coded('08006'))).toBe(true); // connection_failure
    expect(isStoreUnavailable(new Error('wrapped', { cause: coded('ECONNRESET') }))).toBe(true);
    expect(isStoreUnavailable(coded('23505'))).toBe(false); // unique_violation: a bug, not an outage
    expect(isStoreUnavailable(new TypeError('Cannot read properties of undefined (reading "terminating connection")'))).toBe(false);
  });

  it("recognises node-postgres's codeless connection errors", () => {
    expect(isStoreUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isStoreUnavailable(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
  });
});
