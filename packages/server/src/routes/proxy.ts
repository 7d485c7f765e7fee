import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidInput, type IdentitySelector, type ProxiedResponse, type Tags } from '@everyauth/core';
import { errorResponses, serviceIdParam } from '../schemas.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const PREFIX = '/v1/proxy/';

const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

function decoded(request: FastifyRequest, name: string): string | undefined {
  const value = header(request, name);
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new InvalidInput(`The ${name} header is not valid percent-encoding (RFC 3986 §2.1).`, name);
  }
}

/**
 * The identity the request names: `EveryAuth-Identity-Id`, or `EveryAuth-User-Id` with optional
 * `EveryAuth-Tenant-Id` and `EveryAuth-Tags` (`k=v&k2=v2`); ids percent-encoded, as header values are bytes.
 */
function selectorOf(request: FastifyRequest): IdentitySelector {
  const id = header(request, 'everyauth-identity-id');
  if (id !== undefined) return id;
  const userId = decoded(request, 'everyauth-user-id');
  const tenantId = decoded(request, 'everyauth-tenant-id');
  const tagText = header(request, 'everyauth-tags');
  const tags: Tags | undefined = tagText === undefined ? undefined : Object.fromEntries(new URLSearchParams(tagText));
  if (userId === undefined && tenantId === undefined && tags === undefined) {
    throw new InvalidInput(
      'Name the identity to call the API as: an EveryAuth-Identity-Id header, or EveryAuth-User-Id (with EveryAuth-Tenant-Id and EveryAuth-Tags when needed).',
      'everyauth-identity-id',
    );
  }
  if (userId !== undefined && tenantId === undefined && tags === undefined) return userId;
  return { userId, tenantId, tags };
}

/** The path and query after `/v1/proxy/{serviceId}`, exactly as sent (not decoded, not normalized). */
function pathOf(request: FastifyRequest): string {
  const absolute = header(request, 'everyauth-url');
  const rest = request.raw.url!.slice(PREFIX.length);
  const at = rest.search(/[/?]/);
  const path = at === -1 ? '' : rest.slice(at);
  if (absolute === undefined) return path;
  if (path !== '' && path !== '/')
    throw new InvalidInput('Send either a path after the service or an EveryAuth-Url header, not both.', 'everyauth-url');
  return absolute;
}

/**
 * `/v1/proxy/{serviceId}/{path}`: the request goes to the service's API as the identity the
 * headers name, with its credential; the answer streams back, marked `EveryAuth-Proxy: upstream`
 * so a client can tell it from EveryAuth's own errors. Bodies are not read here: they stream through.
 */
export const proxyRoutes: FastifyPluginAsync = async (app) => {
  const { broker, metrics } = app.everyauth;
  // The body belongs to the API: leave it on the socket so that it streams upstream unbuffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  const handler = async (request: FastifyRequest<{ Params: { serviceId: string } }>, reply: FastifyReply) => {
    const { serviceId } = request.params;
    const selector = selectorOf(request);
    const path = pathOf(request);
    const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
    const abort = new AbortController();
    // The caller went away: stop the upstream request too.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const started = performance.now();
    let response: ProxiedResponse;
    try {
      response = await broker.forward(serviceId, selector, path, {
        method: request.method,
        headers: request.headers,
        body: hasBody ? (request.raw as AsyncIterable<Uint8Array>) : null,
        signal: abort.signal,
      });
    } catch (err) {
      // The caller hung up first: there is no one to answer.
      if (abort.signal.aborted) return reply.hijack();
      metrics.observeProxy(serviceId, (err as { status?: number }).status ?? 500, (performance.now() - started) / 1000);
      throw err;
    }
    metrics.observeProxy(serviceId, response.status, (performance.now() - started) / 1000);
    // undici's body stream goes to the socket as it is: Fastify pipes it, with backpressure, and
    // destroys it (releasing the API's connection) if the caller goes away.
    return reply.code(response.status).headers(response.headers).header('everyauth-proxy', 'upstream').send(response.body);
  };

  const schema = {
    tags: ['proxy'],
    summary: "Call the service's API as an identity, with its credential (any method; the path follows the service id)",
    description:
      'Name the identity with EveryAuth-Identity-Id, or EveryAuth-User-Id (+ EveryAuth-Tenant-Id, EveryAuth-Tags). ' +
      "The path is resolved under the service's API base URLs; EveryAuth-Url may name an absolute URL under them instead. " +
      'Answers from the API carry EveryAuth-Proxy: upstream. Needs a key with the proxy (or tokens:read) scope.',
    params: { type: 'object', properties: { serviceId: serviceIdParam } },
    response: errorResponses,
  };
  for (const url of ['/v1/proxy/:serviceId', '/v1/proxy/:serviceId/*']) {
    app.route({ method: METHODS, url, config: { access: 'proxy', streamsBody: true }, schema, handler });
  }
};
