import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { EveryAuthError, InvalidInput, ReauthorizationRequired, registerError, type ErrorJSON } from '@everyauth/core';
import type { ServerContext } from './context.js';
import { reconnectLink } from './reconnect-links.js';

/** The request carries no API key, or one that is malformed, unknown or deleted. */
export class Unauthorized extends EveryAuthError {
  constructor(message: string) {
    super('unauthorized', message, { status: 401 });
  }

  static override fromJSON(body: ErrorJSON): Unauthorized {
    return new Unauthorized(body.message);
  }
}

/** The API key is valid but lacks the scope the route needs. */
export class Forbidden extends EveryAuthError {
  constructor(readonly scope: string) {
    super('forbidden', `This API key lacks the "${scope}" scope this route needs.`, { status: 403 });
  }

  protected override details(): Record<string, unknown> {
    return { scope: this.scope };
  }

  static override fromJSON(body: ErrorJSON): Forbidden {
    return new Forbidden(String(body.scope));
  }
}

/** The API key made more requests than the rate limit allows in its window; retry after it. */
export class RateLimited extends EveryAuthError {
  constructor(
    readonly limit: number,
    readonly window: string,
  ) {
    super('rate_limited', `This API key made more than ${limit} requests in ${window}; slow down.`, { status: 429, retryable: true });
  }

  protected override details(): Record<string, unknown> {
    return { limit: this.limit, window: this.window };
  }

  static override fromJSON(body: ErrorJSON): RateLimited {
    return new RateLimited(Number(body.limit), String(body.window));
  }
}

/** No webhook has the id. */
export class WebhookNotFound extends EveryAuthError {
  constructor(readonly id: string) {
    super('webhook_not_found', `No webhook "${id}" exists.`, { status: 404 });
  }

  protected override details(): Record<string, unknown> {
    return { id: this.id };
  }

  static override fromJSON(body: ErrorJSON): WebhookNotFound {
    return new WebhookNotFound(String(body.id));
  }
}

/** The webhook has no delivery with the id (it never existed, or was pruned after the retention). */
export class DeliveryNotFound extends EveryAuthError {
  constructor(
    readonly webhookId: string,
    readonly id: string,
  ) {
    super('delivery_not_found', `Webhook "${webhookId}" has no delivery "${id}" (deliveries are pruned after the retention).`, {
      status: 404,
    });
  }

  protected override details(): Record<string, unknown> {
    return { webhookId: this.webhookId, id: this.id };
  }

  static override fromJSON(body: ErrorJSON): DeliveryNotFound {
    return new DeliveryNotFound(String(body.webhookId), String(body.id));
  }
}

/** Only a failed delivery can be replayed: a pending one is still being retried, a delivered one arrived. */
export class DeliveryNotFailed extends EveryAuthError {
  constructor(
    readonly id: string,
    readonly deliveryStatus: string,
  ) {
    super(
      'delivery_not_failed',
      `Delivery "${id}" is ${deliveryStatus}: only a failed delivery can be replayed (a pending one is still being retried).`,
      { status: 409 },
    );
  }

  protected override details(): Record<string, unknown> {
    return { id: this.id, deliveryStatus: this.deliveryStatus };
  }

  static override fromJSON(body: ErrorJSON): DeliveryNotFailed {
    return new DeliveryNotFailed(String(body.id), String(body.deliveryStatus));
  }
}

registerError(Unauthorized, Forbidden, RateLimited, WebhookNotFound, DeliveryNotFound, DeliveryNotFailed);

/** The error JSON of every route: the typed error's own JSON form (see the registry in core's errors.ts). */
export function errorBody(err: EveryAuthError): ErrorJSON {
  return err.toJSON();
}

/** A request the server refuses before any route runs (body too large, not JSON …), in the same JSON form. */
const refused = (code: string, status: number, message: string, retryable = false) =>
  new EveryAuthError(code, message, { status, retryable });

/** Turns whatever a route threw into a clear 4xx or a logged 5xx that reveals nothing. */
export function handleError(error: FastifyError | EveryAuthError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof EveryAuthError) {
    // Every identity that needs re-authorization gets a link that reconnects it (issue 15).
    const ctx = request.server.everyauth as ServerContext | undefined;
    if (error instanceof ReauthorizationRequired && !error.reconnectUrl && ctx) {
      error.reconnectUrl = reconnectLink(ctx.publicUrl, ctx.vault, error.identityId).url;
    }
    if (error.status >= 500) request.log.warn({ code: error.code, status: error.status }, error.message);
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
    return reply.code(400).send(errorBody(new InvalidInput(message, field)));
  }
  const rejection = requestRejection(fe);
  if (rejection) return reply.code(rejection.status).send(errorBody(rejection));
  if (isStoreUnavailable(error)) {
    request.log.warn({ code: (error as { code?: string }).code }, 'store unavailable');
    return reply.code(503).send(errorBody(refused('store_unavailable', 503, 'The store is unavailable; try again shortly.', true)));
  }
  request.log.error({ err: error }, 'unexpected error');
  const internal = refused('internal_error', 500, 'The server failed to handle the request; see its logs.', true);
  return reply.code(500).send(errorBody(internal));
}

/** Fastify's own refusals of a request, by their code (never their message). */
function requestRejection(fe: FastifyError): EveryAuthError | undefined {
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return refused('payload_too_large', 413, 'The request body is larger than this server accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return refused('unsupported_media_type', 415, 'Send request bodies as application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return refused('invalid_json', 400, 'The body is empty but its content-type says JSON.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return refused('invalid_json', 400, 'The body is not valid JSON.');
    default:
  }
  // A JSON.parse in a custom parser or plugin: still the client's body that is wrong.
  if (fe instanceof SyntaxError) return refused('invalid_json', 400, 'The body is not valid JSON.');
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    return refused(fe.code ?? 'bad_request', fe.statusCode, fe.message);
  }
  return undefined;
}

/** Connection-level failures of the database (down, restarting, refusing connections), as opposed to a bug. */
export function isStoreUnavailable(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    // Socket errors, SQLite's lock timeout, and PostgreSQL's SQLSTATE classes 08 (connection
    // exception) and 57P (operator intervention: shutdown, restart).
    const code = e.code;
    if (
      typeof code === 'string' &&
      (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'SQLITE_BUSY'].includes(code) || /^(08|57P)/.test(code))
    )
      return true;
  }
  // The one exception to matching by code: node-postgres raises a lost connection as a plain Error
  // with no code (pg/lib/client.js "Connection terminated unexpectedly", "Client has encountered a
  // connection error …"; pg-pool "Connection terminated due to connection timeout").
  return /^(Connection terminated|Client has encountered a connection error)/.test((error as Error)?.message ?? '');
}
