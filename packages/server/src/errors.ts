import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  AmbiguousIdentity,
  AuthorizationFailed,
  EveryAuthError,
  InvalidInput,
  NotFound,
  ProviderError,
  ProviderUnavailable,
  ReauthorizationRequired,
} from '@everyauth/core';

/**
 * The error JSON of every route: the typed error's own JSON, its class name as `type`, and the
 * fields RemoteBroker needs to rebuild the same typed error on the other side.
 */
export function errorBody(err: EveryAuthError): Record<string, unknown> {
  const body: Record<string, unknown> = { ...err.toJSON(), type: err.name };
  if (err instanceof InvalidInput && err.field) body.field = err.field;
  if (err instanceof NotFound) Object.assign(body, { kind: err.kind, id: err.id });
  if (err instanceof AmbiguousIdentity) Object.assign(body, { serviceId: err.serviceId, count: err.count });
  if (err instanceof ProviderUnavailable) body.providerId = err.providerId;
  if (err instanceof ProviderError) Object.assign(body, { providerId: err.providerId, providerError: err.error });
  if (err instanceof AuthorizationFailed) Object.assign(body, { description: err.description, context: err.context });
  if (err instanceof ReauthorizationRequired) Object.assign(body, err.toJSON());
  return body;
}

/** Turns whatever a route threw into a clear 4xx or a logged 5xx that reveals nothing. */
export function handleError(error: FastifyError | EveryAuthError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof EveryAuthError) {
    if (error.status >= 500) request.log.warn({ code: error.code, status: error.status }, error.message);
    // RFC 9110 §10.2.3: when to ask again; sooner gets the same answer (the failure is shared).
    if (error instanceof ProviderUnavailable && error.retryAfterMs !== undefined) {
      void reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
    }
    return reply.code(error.status).send(errorBody(error));
  }
  const fe = error as FastifyError;
  if (fe.validation) {
    const first = fe.validation[0]!;
    const params = first.params as Record<string, unknown>;
    const path = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const field = [path, params.missingProperty ?? params.additionalProperty].filter(Boolean).join('.') || undefined;
    const where = [fe.validationContext ?? 'request', path].filter(Boolean).join('.');
    const message = params.missingProperty
      ? `${where}.${String(params.missingProperty)} is required`
      : params.additionalProperty
        ? `${where} has an unknown property "${String(params.additionalProperty)}"`
        : `${where} ${first.message}`;
    return reply.code(400).send({ error: 'invalid_input', message, field, type: 'InvalidInput', retryable: false });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return reply
        .code(413)
        .send({ error: 'payload_too_large', message: 'The request body is larger than this server accepts.', retryable: false });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return reply
        .code(415)
        .send({ error: 'unsupported_media_type', message: 'Send request bodies as application/json.', retryable: false });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return reply
        .code(400)
        .send({ error: 'invalid_json', message: 'The body is empty but its content-type says JSON.', retryable: false });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return reply.code(400).send({ error: 'invalid_json', message: 'The body is not valid JSON.', retryable: false });
    default:
  }
  if (isStoreUnavailable(error)) {
    request.log.warn({ code: (error as { code?: string }).code }, 'store unavailable');
    return reply.code(503).send({ error: 'store_unavailable', message: 'The store is unavailable; try again shortly.', retryable: true });
  }
  if (error instanceof SyntaxError || (fe.statusCode === 400 && /JSON/i.test(fe.message))) {
    return reply.code(400).send({ error: 'invalid_json', message: 'The body is not valid JSON.', retryable: false });
  }
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    return reply.code(fe.statusCode).send({ error: fe.code ?? 'bad_request', message: fe.message, retryable: false });
  }
  request.log.error({ err: error }, 'unexpected error');
  return reply
    .code(500)
    .send({ error: 'internal_error', message: 'The server failed to handle the request; see its logs.', retryable: true });
}

/** Connection-level failures of the database (down, restarting, refusing connections), as opposed to a bug. */
export function isStoreUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (
    typeof code === 'string' &&
    (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'SQLITE_BUSY'].includes(code) || /^(08|57P)/.test(code))
  )
    return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection/i.test(
    (error as Error)?.message ?? '',
  );
}
