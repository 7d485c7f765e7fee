import {
  AuthorizationFailed,
  ConfigurationError,
  EveryAuthError,
  InvalidInput,
  isFormKind,
  randomToken,
  validateFinishedUrl,
  withQuery,
  type Broker,
  type IdentitySummary,
  type Tags,
} from '@everyauth/core';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { bindingCookieName, clearBindingCookie, readCookie, setBindingCookie } from './binding.js';
import { serveCredentialForm } from './credential-form.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * The request the mapping functions see. Route parameters are typed as plain strings, so the
 * tutorial's `(req) => req.params.userId` type-checks under Express 5's types too; whatever a
 * function returns is checked at run time.
 */
export type AuthorizeRequest = Request<Record<string, string>>;

export interface AuthorizeOptions {
  /**
   * Where the user lands when the flow ends: a path of this app, or a URL on an allowed origin. It
   * gets `userId`, `tenantId` and `serviceId` on success, `error` and `error_description` on failure.
   */
  finishedUrl?: string;
  /** The id of the user in your app, read from the request that starts the flow. */
  mapToUserId: (req: AuthorizeRequest) => MaybePromise<string | undefined>;
  /** The user's organisation in your app, when identities are per tenant. */
  mapToTenantId?: (req: AuthorizeRequest) => MaybePromise<string | undefined>;
  /** Tags stored on the identity: fixed, or read from the request. */
  tags?: Tags | ((req: AuthorizeRequest) => MaybePromise<Tags | undefined>);
  /** Called once the identity is stored, before the redirect to finishedUrl. If it sends a response, there is no redirect. */
  onAuthorized?: (req: Request, identity: IdentitySummary, res: Response) => MaybePromise<void>;
}

/** One authorize() call: its options and where it was mounted. */
export interface Registration {
  serviceId: string;
  options: AuthorizeOptions;
  mountPaths: string[];
}

type Handler = (req: Request, res: Response, next: NextFunction) => void;

/**
 * What the handlers need from their EveryAuth instance (everyauth.ts implements it). Declared here,
 * so this module does not import everyauth.ts, which imports this one.
 */
export interface AuthorizeHost {
  /** The broker in use, opened on first call. */
  broker(): Promise<Broker>;
  /** The app's public base URL, when configured. */
  readonly baseUrl: string | undefined;
  /** Origins an absolute finishedUrl may point at, besides the app's own. */
  readonly allowedOrigins: string[];
  readonly logger: Logger | undefined;
  /** Each authorize() call, by service. */
  readonly registrations: Map<string, Registration[]>;
  /** Whether the callback route is installed on an app. */
  readonly hasCallbackRoute: boolean;
  /** Installs the callback route on an app, once. */
  installCallbacksOn(app: { use: (fn: Handler) => unknown }): void;
}

/**
 * Middleware that Express mounts like a sub-app: `app.use(path, x)` sees `handle` and `set`, calls
 * `x.handle(req, res, next)` and emits `mount` with the parent app, which is when the callback route
 * is installed on that app, whatever the Express version (4 and 5 do the same).
 */
export interface AuthorizeRouter extends Handler {
  handle: Handler;
  set: (...args: unknown[]) => AuthorizeRouter;
  emit: (event: string, parent?: unknown) => boolean;
  mountpath?: unknown;
}

// ---- starting the flow ----

export function authorizeHandler(everyauth: AuthorizeHost, registration: Registration): AuthorizeRouter {
  const handler = ((req: Request, res: Response, next: NextFunction) => {
    // Only the mount point itself starts a flow; anything below it belongs to the app.
    // POST is the credential form's submission (api_key, basic, jwt); startAuthorization passes it on otherwise.
    if ((req.method !== 'GET' && req.method !== 'POST') || (req.path !== '/' && req.path !== '')) return next();
    startAuthorization(everyauth, registration, req, res, next).catch((err: unknown) =>
      failStart(everyauth, registration, err, req, res, next),
    );
  }) as AuthorizeRouter;
  handler.handle = handler;
  handler.set = () => handler;
  handler.emit = (event, parent) => {
    if (event !== 'mount' || !isApp(parent)) return false;
    if (typeof handler.mountpath === 'string') registration.mountPaths.push(handler.mountpath);
    everyauth.installCallbacksOn(parent);
    return true;
  };
  return handler;
}

function isApp(value: unknown): value is { use: (fn: Handler) => unknown } {
  return typeof value === 'function' && typeof (value as { use?: unknown }).use === 'function';
}

/** The callback is served by this app when the broker is embedded; a server hosts its own. */
const callbackIsHere = (broker: Broker) => broker.flowHost === 'app';

/** This app's origin: the configured base URL, else the one the request came to. */
const appOrigin = (everyauth: AuthorizeHost, req: Request) => everyauth.baseUrl ?? `${req.protocol}://${req.get('host')}`;

async function startAuthorization(
  everyauth: AuthorizeHost,
  registration: Registration,
  req: Request,
  res: Response,
  next: NextFunction,
): Promise<void> {
  const { serviceId, options } = registration;
  const broker = await everyauth.broker();
  const provider = callbackIsHere(broker) ? await broker.getProvider((await broker.getService(serviceId)).providerId) : undefined;
  const isForm = provider !== undefined && isFormKind(provider.kind);
  if (req.method === 'POST' && !isForm) return next();
  const request = req as unknown as AuthorizeRequest;
  const userId = await options.mapToUserId(request);
  if (typeof userId !== 'string')
    throw new InvalidInput(
      `mapToUserId must return the user's id as a string; it returned ${userId === undefined ? 'nothing' : typeof userId}.`,
      'userId',
    );
  const tenantId = options.mapToTenantId ? await options.mapToTenantId(request) : undefined;
  const tags = typeof options.tags === 'function' ? await options.tags(request) : options.tags;
  if (isForm) {
    await serveCredentialForm(broker, provider, { serviceId, userId, tenantId, tags, finishedUrl: options.finishedUrl }, req, res);
    return;
  }
  const here = callbackIsHere(broker);
  if (!here) {
    // The server redirects back to this app, so a path must become a URL on the app's origin.
    const finishedUrl = options.finishedUrl === undefined ? undefined : new URL(options.finishedUrl, appOrigin(everyauth, req)).href;
    const session = await broker.createSession({ serviceId, userId, tenantId, tags, finishedUrl });
    return res.redirect(302, session.url);
  }
  if (!everyauth.hasCallbackRoute) {
    throw new ConfigurationError(
      `The callback route of service "${serviceId}" is not installed: authorize() was mounted on a Router, not on the app. Add app.use(everyauth.callbacks()) once.`,
    );
  }
  // The index of the registration rides in the cookie, and the whole cookie is the binding the
  // broker hashes, so the callback knows which authorize() started the flow and nobody can change it.
  const index = (everyauth.registrations.get(serviceId) ?? []).indexOf(registration);
  const binding = `${index}.${randomToken()}`;
  const started = await broker.beginAuthorization({
    serviceId,
    userId,
    tenantId,
    tags,
    finishedUrl: options.finishedUrl,
    browserBinding: binding,
  });
  const callback = new URL((await broker.getService(serviceId)).redirectUrl);
  setBindingCookie(res, serviceId, binding, {
    path: callback.pathname,
    maxAgeMs: Math.max(0, Date.parse(started.expiresAt) - Date.now()),
    secure: callback.protocol === 'https:',
  });
  res.redirect(302, started.url);
}

/** An error as the two query parameters the app reads; an unexpected error's message stays in the log. */
function describeError(err: unknown): { error: string; error_description: string } {
  if (err instanceof AuthorizationFailed) return { error: err.error, error_description: err.description };
  if (err instanceof EveryAuthError) return { error: err.code, error_description: err.message };
  return {
    error: 'server_error',
    error_description: 'The authorization could not be completed because of an error in the application; try again later.',
  };
}

/**
 * Where an error of this registration may be sent: its finishedUrl when that is a path of this app
 * or on an allowed origin; undefined otherwise (the error then goes to next(err)).
 */
function errorTarget(everyauth: AuthorizeHost, finishedUrl: string | undefined): string | undefined {
  if (finishedUrl === undefined) return undefined;
  try {
    return validateFinishedUrl(
      finishedUrl,
      everyauth.allowedOrigins.map((o) => new URL(o).origin),
    );
  } catch {
    return undefined;
  }
}

function failStart(
  everyauth: AuthorizeHost,
  registration: Registration,
  err: unknown,
  req: Request,
  res: Response,
  next: NextFunction,
): void {
  if (!(err instanceof EveryAuthError))
    everyauth.logger?.error({ err, serviceId: registration.serviceId }, 'starting the authorization failed');
  const target = errorTarget(everyauth, registration.options.finishedUrl);
  // A refused finishedUrl is the one place an error cannot be sent to.
  const finishedUrlRefused = err instanceof InvalidInput && err.field === 'finishedUrl';
  if (!target || finishedUrlRefused || res.headersSent) return next(err);
  res.redirect(302, withQuery(target, { ...describeError(err), serviceId: registration.serviceId }));
}

// ---- the callback ----

const CALLBACK_PATH = /\/([^/]+)\/callback$/;

/** Serves `/{serviceId}/callback` for every service authorize() was called for; passes anything else on. */
export function callbackHandler(everyauth: AuthorizeHost): Handler {
  return function everyauthCallback(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== 'GET') return next();
    const [pathname, search = ''] = req.originalUrl.split('?', 2) as [string, string | undefined];
    const match = CALLBACK_PATH.exec(pathname);
    const serviceId = match ? safeDecode(match[1]!) : undefined;
    if (!serviceId || !everyauth.registrations.has(serviceId)) return next();
    completeCallback(everyauth, serviceId, pathname, new URLSearchParams(search), req, res, next).catch((err: unknown) => {
      everyauth.logger?.error({ err, serviceId }, 'authorization callback failed');
      if (!res.headersSent) next(err);
    });
  };
}

async function completeCallback(
  everyauth: AuthorizeHost,
  serviceId: string,
  pathname: string,
  query: URLSearchParams,
  req: Request,
  res: Response,
  next: NextFunction,
): Promise<void> {
  const broker = await everyauth.broker();
  const callback = new URL((await broker.getService(serviceId).catch(() => undefined))?.redirectUrl ?? 'http://invalid/');
  // Only the exact redirect URL the broker sent to the provider is a callback.
  if (!callbackIsHere(broker) || callback.pathname !== pathname) return next();
  // The callback URL holds the code and state: no page reached from it may see it in a Referer
  // (RFC 9700 §4.2.4), and no cache may keep it.
  res.set({ 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store' });

  const binding = readCookie(req, bindingCookieName(serviceId));
  clearBindingCookie(res, serviceId, callback.pathname, callback.protocol === 'https:');
  const registrations = everyauth.registrations.get(serviceId) ?? [];
  let done;
  try {
    done = await broker.completeAuthorization(serviceId, query, { browserBinding: binding });
  } catch (err) {
    return failCallback(everyauth, registrations, serviceId, err, res, next);
  }
  const registration = registrations[Number(binding?.split('.', 1)[0])];
  if (registration?.options.onAuthorized) {
    try {
      await registration.options.onAuthorized(req, done.identity, res);
    } catch (err) {
      everyauth.logger?.error({ err, serviceId }, 'onAuthorized failed');
      const target = done.finishedUrl && errorTarget(everyauth, registration.options.finishedUrl);
      if (!target || res.headersSent) return next(err);
      return res.redirect(302, withQuery(target, { ...describeError(err), serviceId }));
    }
    if (res.headersSent) return;
  }
  if (done.finishedUrl) return res.redirect(302, done.finishedUrl);
  res.type('html').send('<!doctype html><title>Authorized</title><p>Authorization complete. You can close this window.</p>');
}

function failCallback(
  everyauth: AuthorizeHost,
  registrations: Registration[],
  serviceId: string,
  err: unknown,
  res: Response,
  next: NextFunction,
): void {
  if (res.headersSent) return;
  // The broker knows the flow's finishedUrl whenever it found the flow, and puts the error on it.
  if (err instanceof AuthorizationFailed && err.context.finishedUrl) return res.redirect(302, err.context.finishedUrl);
  // An unknown or replayed state: the flow is not known, but the service's one finishedUrl is.
  const targets = new Set(registrations.map((r) => errorTarget(everyauth, r.options.finishedUrl)));
  const [target] = targets;
  if (targets.size !== 1 || !target) return next(err);
  res.redirect(302, withQuery(target, { ...describeError(err), serviceId }));
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
