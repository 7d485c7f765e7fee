import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchema } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import { pino, type Logger } from 'pino';
import type { BrokerEvent, LocalBroker, Store, Vault } from '@everyauth/core';
import { ApiKeyVerifier, SCOPES, allows, type Scope, type VerifiedKey } from './api-keys.js';
import { BackgroundRefresher, type BackgroundRefreshOptions } from './background-refresh.js';
import type { Access, ServerContext } from './context.js';
import { Forbidden, RateLimited, Unauthorized, handleError } from './errors.js';
import { migrateServerTables } from './migrations/index.js';
import { LifecycleLoop, type LifecycleLoopOptions } from './lifecycle-loop.js';
import { Metrics } from './metrics.js';
import { bodyDeadline } from './body-deadline.js';
import { RequestLog } from './request-log.js';
import { adminRoutes } from './routes/admin.js';
import { apiRoutes } from './routes/api.js';
import { describeAccess, docsRoutes } from './routes/docs.js';
import { hostedRoutes } from './routes/hosted.js';
import { connectRoutes } from './routes/connect.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { proxyRoutes } from './routes/proxy.js';
import { errorSchema } from './schemas.js';
import { Webhooks, type WebhookOptions } from './webhooks.js';
import { consoleRoutes } from './console/index.js';
import { enableSandbox, type Sandbox } from './sandbox/index.js';

export type EventListener = (event: BrokerEvent) => Promise<void>;

export interface BuildServerOptions {
  /**
   * The broker to serve, or a factory given the server's event listener (pass it as the
   * LocalBroker's `onEvent`): webhooks and the refresh metrics are fed by broker events, so a
   * broker built without it serves everything except those.
   */
  broker: LocalBroker | ((onEvent: EventListener) => LocalBroker);
  /** Default: the broker's store. */
  store?: Store;
  /** Seals webhook secrets and hosted-flow links; default: the broker's vault. */
  vault?: Vault;
  /** A pino logger; default one at `logLevel` that never logs query strings, cookies or API keys. */
  logger?: Logger;
  logLevel?: string;
  /** Requests per key per window; `false` turns the limit off (default 6,000 per minute). */
  apiKeyRateLimit?: { max: number; timeWindowMs: number } | false;
  /** Refresh ahead of expiry (default every 30 s, 10 min ahead); `false` turns it off. */
  backgroundRefresh?: BackgroundRefreshOptions | false;
  /** Keep-alive, dead marking and scheduled health checks (default every 60 s); `false` turns them off. */
  lifecycle?: LifecycleLoopOptions | false;
  /** Webhook delivery settings; `false` stops this replica from sending (deliveries still get recorded). */
  webhooks?: WebhookOptions | false;
  /** Largest request body in bytes (default 64 KiB). */
  bodyLimit?: number;
  /**
   * How long a client has to send its request's headers, and then its body (default 10 s); a body
   * streamed through the proxy may take longer, but may not pause that long. A slower sender gets 408
   * and its connection is closed, so a few slow clients cannot hold every socket.
   */
  requestTimeoutMs?: number;
  /** How long a verified API key's row is cached (default 5 s). */
  apiKeyCacheMs?: number;
  /** Add Node process metrics (memory, event loop) to /metrics. */
  processMetrics?: boolean;
  /** Serve the web console at /console/ (default true). */
  console?: boolean;
  /** The built-in sandbox authorization server to mount at its issuer's path, as provider and service `sandbox`. */
  sandbox?: Sandbox;
}

/** A pino logger whose request lines carry the path only: query strings hold `code`, `state` and sealed links. */
export function serverLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  const options = {
    name: 'everyauth-server',
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        path: (req.url ?? '').split('?')[0],
      }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err,
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The Broker over HTTP: REST API under /v1, hosted flow, health and metrics. Not yet listening. */
export async function buildServer(options: BuildServerOptions): Promise<FastifyInstance> {
  const logger = options.logger ?? serverLogger(options.logLevel);
  const metrics = new Metrics({ processMetrics: options.processMetrics });
  // Called only after the broker is made, by which time `webhooks` below exists.
  const onEvent: EventListener = async (event) => {
    metrics.observeEvent(event);
    await webhooks.enqueue(event);
  };
  const broker = typeof options.broker === 'function' ? options.broker(onEvent) : options.broker;
  const store = options.store ?? broker.store;
  const vault = options.vault ?? broker.vault;
  await migrateServerTables(store);
  metrics.countIdentitiesWith(() => broker.countIdentities());
  const webhooks = new Webhooks(store, vault, logger, metrics, options.webhooks || {});
  const publicUrl = broker.redirectUrl('x').replace(/\/x\/callback$/, '');
  const ctx: ServerContext = { broker, store, vault, keys: new ApiKeyVerifier(store, options.apiKeyCacheMs), metrics, webhooks, publicUrl };

  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // Node's requestTimeout would cut off a long upload through the proxy, and cannot be set per
    // route: the body's deadline is set per route instead (body-deadline.ts). Node checks the headers'
    // deadline on a timer (30 s by default): checking every second keeps a slow sender's cut-off near it.
    requestTimeout: 0,
    http: { headersTimeout: requestTimeoutMs, connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs) },
    // Unknown properties fail validation instead of being silently dropped, so a typo gets a clear 400.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    routerOptions: { maxParamLength: 256 },
    logController: new RequestLog(),
  });
  app.decorate('everyauth', ctx);
  app.decorateRequest('apiKey', undefined);
  app.addSchema(errorSchema);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}.`, retryable: false }),
  );

  app.addHook('onRequest', bodyDeadline(requestTimeoutMs));
  app.addHook('onRequest', (request, reply, done) => authenticate(ctx, request, reply, done));
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  const limit = options.apiKeyRateLimit ?? { max: 6_000, timeWindowMs: 60_000 };
  if (limit) {
    await app.register(rateLimit, {
      hook: 'preHandler',
      max: limit.max,
      timeWindow: limit.timeWindowMs,
      keyGenerator: (request) => request.apiKey?.id ?? request.ip,
      errorResponseBuilder: (_request, context) => new RateLimited(context.max, context.after),
    });
  }
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'EveryAuth server',
        version: '1',
        description:
          'The EveryAuth broker over HTTP. Send `Authorization: Bearer <API key>`. Scopes: `admin` (everything), ' +
          '`tokens:read` (read tokens, look identities, services and providers up), `connect` (start and complete authorizations).',
      },
      servers: [{ url: publicUrl }],
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: describeAccess,
  });

  app.addHook('onRoute', (route) => {
    if (route.schema && !route.schema.hide) route.schema = documentAccess(route.schema, route.config?.access ?? 'admin');
  });

  hostedRoutes(app, ctx);
  apiRoutes(app, ctx);
  adminRoutes(app, ctx);
  lifecycleRoutes(app, ctx);
  connectRoutes(app, ctx);
  await app.register(proxyRoutes);
  if (options.console !== false) await app.register(consoleRoutes);
  if (options.sandbox) await enableSandbox(app, broker, options.sandbox);

  await app.register(docsRoutes);
  app.get('/health', { config: { access: 'public', rateLimit: false }, schema: { hide: true } }, (request, reply) => health(store, reply));
  app.get('/metrics', { config: { access: 'public', rateLimit: false }, schema: { hide: true } }, async (_request, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  // A kept-alive socket whose response finishes while closing would hold close() open until its
  // keep-alive timeout: from now on, such sockets are closed as soon as they go idle.
  app.addHook('preClose', (done) => {
    app.server.keepAliveTimeout = 1;
    done();
  });

  const background =
    options.backgroundRefresh === false
      ? undefined
      : new BackgroundRefresher(broker, options.backgroundRefresh ?? { intervalMs: 30_000, aheadMs: 10 * 60_000 }, logger, metrics);
  const lifecycle = options.lifecycle === false ? undefined : new LifecycleLoop(broker, options.lifecycle ?? {}, logger, metrics);
  app.addHook('onReady', async () => {
    background?.start();
    lifecycle?.start();
    if (options.webhooks !== false) webhooks.start();
  });
  // After the listener closed and in-flight requests finished: let background refreshes and deliveries finish too.
  app.addHook('onClose', async () => {
    await background?.stop();
    await lifecycle?.stop();
    await webhooks.stop();
  });
  return app;
}

/**
 * Checks the API key and the route's scope. Callback-style: a key the verifier has cached (most
 * requests) is checked without a promise or a trip through the microtask queue.
 */
function authenticate(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const access: Access = request.routeOptions.config?.access ?? 'admin';
  if (access === 'public') return done();
  // Every answer to an API key may carry a token, a secret or a profile: no cache may keep it
  // (RFC 6749 §5.1; Pragma for HTTP/1.0 caches), the errors included.
  void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  const key = bearerKey(request.headers.authorization);
  if (!key) {
    reply.header('www-authenticate', 'Bearer realm="everyauth"');
    return done(
      new Unauthorized('This route needs an API key: send "Authorization: Bearer <key>" (create one with `everyauth apikey create`).'),
    );
  }
  const verified = ctx.keys.verify(key);
  if (verified instanceof Promise) verified.then((v) => done(admit(request, reply, access, v)), done);
  else done(admit(request, reply, access, verified));
}

/** The error for a key that is not valid or lacks the route's scope; undefined (and request.apiKey set) when it may go on. */
function admit(request: FastifyRequest, reply: FastifyReply, access: Scope, verified: VerifiedKey | undefined): Error | undefined {
  if (!verified) {
    reply.header('www-authenticate', 'Bearer realm="everyauth", error="invalid_token"');
    return new Unauthorized('The API key is not valid: it is malformed, unknown or deleted.');
  }
  request.apiKey = verified;
  if (!allows(verified.scopes, access)) {
    return new Forbidden(access);
  }
  return undefined;
}

/** An operation's OpenAPI entry says which scope it needs; a public one needs no key at all. */
function documentAccess(schema: FastifySchema, access: Access): FastifySchema {
  if (access === 'public') return { ...schema, security: [] };
  const others = SCOPES.filter((s) => s !== access && allows([s], access)).map((s) => `\`${s}\``);
  const needs = `Needs an API key with the \`${access}\` scope${others.length ? ` (or ${others.join(' or ')})` : ''}.`;
  return { ...schema, description: schema.description ? `${schema.description}\n\n${needs}` : needs };
}

/** The credentials of `Authorization: Bearer <key>`; the scheme is case-insensitive (RFC 9110 §11.1). */
function bearerKey(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^bearer +(.+)$/i.exec(header);
  return match?.[1]!.trim() || undefined;
}

async function health(store: Store, reply: FastifyReply): Promise<FastifyReply> {
  try {
    await Promise.race([
      store.db.selectFrom('services').select('id').limit(1).execute(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000).unref()),
    ]);
    return reply.send({ status: 'ok', store: store.dialect });
  } catch {
    return reply.code(503).send({ status: 'unavailable', store: store.dialect, message: 'The store does not answer.' });
  }
}
