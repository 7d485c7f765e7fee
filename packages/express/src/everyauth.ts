import {
  ConfigurationError,
  InvalidInput,
  ReauthorizationRequired,
  openBroker,
  resolveConfig,
  type Broker,
  type FetchInit,
  type FreshIdentity,
  type IdentityFilter,
  type IdentitySelector,
  type IdentitySummary,
  type Page,
  type ResolvedConfig,
} from '@everyauth/core';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { connectHandler, type ConnectOptions } from './connect.js';
import { errorHandler, type ErrorHandler } from './error-handler.js';
import {
  authorizeHandler,
  callbackHandler,
  type AuthorizeHost,
  type AuthorizeOptions,
  type AuthorizeRouter,
  type Registration,
} from './authorize.js';

/** Where the broker comes from. Everything is optional: environment variables and `.everyauth/` fill the rest. */
export interface EveryAuthConfig {
  /** A broker to use as it is (tests, or an app that builds its own). Takes precedence over everything below. */
  broker?: Broker;
  /** The folder `everyauth init` made; default `.everyauth` in the working directory (or EVERYAUTH_DIR). */
  dir?: string;
  /** A profile of `.everyauth/config.json` other than the active one. */
  profile?: string;
  /** Embedded mode: the SQLite path or postgres:// URL of the store. */
  store?: string;
  /** Embedded mode: the key ring file holding the master key. */
  keyFile?: string;
  /** Server mode: the EveryAuth server's URL, with `apiKey`. */
  server?: string;
  apiKey?: string;
  /** The app's public base URL; the provider redirects back to `${baseUrl}/${serviceId}/callback`. */
  baseUrl?: string;
  /** Origins an absolute `finishedUrl` may point at, besides the app's own. Relative paths are always allowed. */
  allowedOrigins?: string[];
  /** Environment to read instead of process.env. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface PageOptions {
  next?: string;
  /** Items per page, 1–1000 (default 100). */
  count?: number;
  /** The original API's name for `count`. */
  pageSize?: number;
}

/**
 * One EveryAuth front end for an Express app: the broker it talks to (opened on first use), the
 * services `authorize()` was called for, and the callback route that serves them. The package's
 * default export is one instance; `createEveryAuth()` makes others (tests, several brokers).
 */
export class EveryAuth implements AuthorizeHost {
  private settings: EveryAuthConfig = {};
  private opened?: Promise<{ broker: Broker; owned: boolean; config?: ResolvedConfig }>;
  /** Each authorize() call, by service: the callback uses them for finishedUrl and onAuthorized. */
  readonly registrations = new Map<string, Registration[]>();
  /** Apps the callback route is installed on (by a mount event or callbacks()). */
  private readonly installedOn = new WeakSet<object>();
  private callbacksInstalled = false;
  private callbackMiddleware?: ReturnType<typeof callbackHandler>;

  /**
   * Chooses the broker. May be called before or after `authorize()`; a broker this instance opened
   * before is closed. Without a call, the environment and `.everyauth/` decide.
   */
  config(options: EveryAuthConfig = {}): void {
    const previous = this.opened;
    this.settings = { ...options };
    this.opened = undefined;
    if (previous) void previous.then(({ broker, owned }) => (owned ? broker.close() : undefined)).catch(() => undefined);
  }

  /** The broker in use, opened from the configuration on first call. */
  broker(): Promise<Broker> {
    this.opened ??= this.open();
    // A failed open is retried next time (the key file may appear once `everyauth init` ran).
    this.opened.catch(() => (this.opened = undefined));
    return this.opened.then((o) => o.broker);
  }

  /** The allowed `finishedUrl` origins the config names, for deciding where an error may be sent. */
  get allowedOrigins(): string[] {
    return this.settings.allowedOrigins ?? [];
  }

  /** The app's public base URL, when configured. */
  get baseUrl(): string | undefined {
    return this.settings.baseUrl?.replace(/\/+$/, '');
  }

  get logger(): Logger | undefined {
    return this.settings.logger;
  }

  private async open(): Promise<{ broker: Broker; owned: boolean; config?: ResolvedConfig }> {
    const s = this.settings;
    if (s.broker) return { broker: s.broker, owned: false };
    const env = s.env ?? process.env;
    let config: ResolvedConfig;
    if (s.server) {
      if (!s.apiKey) throw new ConfigurationError('everyauth.config({ server }) needs apiKey too.');
      config = { mode: 'remote', server: s.server, apiKey: s.apiKey };
    } else {
      config = await resolveConfig({ dir: s.dir, profile: s.profile, env });
      if (config.mode === 'embedded') {
        config = {
          ...config,
          store: s.store ?? config.store,
          keyFile: s.keyFile ?? config.keyFile,
          baseUrl: s.baseUrl ?? config.baseUrl,
        };
      }
    }
    const broker = await openBroker(config, {
      env,
      allowedRedirectOrigins: s.allowedOrigins,
      ...(s.logger ? { logger: s.logger } : {}),
    });
    return { broker, owned: true, config };
  }

  /**
   * The middleware that starts a service's authorization: mount it where the app sends its users,
   * e.g. `app.use('/google/authorize/:userId', everyauth.authorize('google', { … }))`. Mounted on an
   * app, it also installs the callback route the provider redirects to; mounted on a Router, add
   * `app.use(everyauth.callbacks())` once.
   */
  authorize(serviceId: string, options: AuthorizeOptions): AuthorizeRouter {
    if (typeof serviceId !== 'string' || serviceId.length === 0) throw new InvalidInput('authorize() needs a service id.', 'serviceId');
    if (!options || typeof options.mapToUserId !== 'function') {
      throw new InvalidInput('authorize() needs options.mapToUserId: (req) => the id of the user in your app.', 'mapToUserId');
    }
    const registration: Registration = { serviceId, options, mountPaths: [] };
    this.registrations.set(serviceId, [...(this.registrations.get(serviceId) ?? []), registration]);
    return authorizeHandler(this, registration);
  }

  /**
   * The connect page for a signed-in user: each service with its state (connected, needs
   * reconnect, not connected) and a button to its authorize() route, e.g.
   * `app.get('/connections', everyauth.connect({ services: ['google', 'asana'], mapToUserId: (req) => req.user?.id }))`.
   */
  connect(options: ConnectOptions): RequestHandler {
    if (!options || !Array.isArray(options.services) || options.services.length === 0 || typeof options.mapToUserId !== 'function')
      throw new InvalidInput(
        'connect() needs options.services (service ids) and options.mapToUserId: (req) => the signed-in user id.',
        'options',
      );
    return connectHandler(this, options);
  }

  /** The callback route for every service `authorize()` was called for; install it once per app. */
  callbacks(): ReturnType<typeof callbackHandler> {
    this.callbacksInstalled = true;
    this.callbackMiddleware ??= callbackHandler(this);
    return this.callbackMiddleware;
  }

  /** Called when an authorize router is mounted on an app: installs the callback route on it once. */
  installCallbacksOn(app: { use: (fn: ReturnType<typeof callbackHandler>) => unknown }): void {
    if (this.installedOn.has(app)) return;
    this.installedOn.add(app);
    app.use(this.callbacks());
  }

  get hasCallbackRoute(): boolean {
    return this.callbacksInstalled;
  }

  /**
   * An always-fresh access token for one identity: by identity id (`idn_…`), user id, or
   * `{ userId, tenantId, tags }`. Undefined when nothing matches; AmbiguousIdentity when several do.
   */
  async getIdentity(serviceId: string, selector: IdentitySelector, options: { force?: boolean } = {}): Promise<FreshIdentity | undefined> {
    const broker = await this.broker();
    return this.namingReauthorizeUrl(() => broker.getIdentity(serviceId, selector, options));
  }

  /**
   * Calls the service's API as one identity, the token never passing through the app: `pathOrUrl`
   * is resolved under the service's API base URLs, a 401 renews the token once. The standard
   * fetch Response comes back; a grant that is gone throws ReauthorizationRequired with the URL
   * to send the user to.
   */
  async fetch(serviceId: string, selector: IdentitySelector, pathOrUrl: string, init?: FetchInit): Promise<Response> {
    const broker = await this.broker();
    return this.namingReauthorizeUrl(() => broker.fetch(serviceId, selector, pathOrUrl, init));
  }

  /** ReauthorizationRequired errors leave here with this app's re-authorize URL in them. */
  private async namingReauthorizeUrl<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof ReauthorizationRequired && !err.authorizeUrl)
        err.authorizeUrl = this.reauthorizeUrl(err.serviceId, err.userId, err.tenantId);
      throw err;
    }
  }

  /** Identities of a service matching the filter, without tokens, a page at a time. */
  async getIdentities(serviceId: string, filter?: IdentityFilter | string | null, page: PageOptions = {}): Promise<Page<IdentitySummary>> {
    const broker = await this.broker();
    const f = typeof filter === 'string' ? { userId: filter } : (filter ?? {});
    return broker.listIdentities(serviceId, f, { next: page.next, count: page.count ?? page.pageSize });
  }

  /** Deletes one identity of the service; `revoke` also revokes its grant at the provider. False when there was none. */
  async deleteIdentity(serviceId: string, identityId: string, options: { revoke?: boolean } = {}): Promise<boolean> {
    const broker = await this.broker();
    const identity = await broker.findIdentity(serviceId, identityId);
    if (!identity) return false;
    return broker.deleteIdentity(identity.id, options);
  }

  /** Deletes every identity of the service matching the filter. An empty filter is refused: pass `null` to delete them all. */
  async deleteIdentities(serviceId: string, filter: IdentityFilter | null, options: { revoke?: boolean } = {}): Promise<number> {
    if (filter === undefined)
      throw new InvalidInput('deleteIdentities needs a filter, or null to delete every identity of the service.', 'filter');
    return (await this.broker()).deleteIdentities(serviceId, filter, options);
  }

  /**
   * Express error middleware for EveryAuth's errors: a revoked grant becomes a redirect to the
   * service's authorize route, other EveryAuth errors a page with their code. Install it after
   * your routes: `app.use(everyauth.errorHandler())`. See error-handler.ts.
   */
  errorHandler(): ErrorHandler {
    return errorHandler(this);
  }

  /** Closes the broker this instance opened (not one passed in with config({ broker })). */
  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    if (!opened) return;
    const { broker, owned } = await opened;
    if (owned) await broker.close();
  }

  /**
   * Where to send a user to authorize again: the mount path of the service's authorize router with
   * its `:userId` (and `:tenantId`) filled in, when that is the only way it names the user.
   */
  reauthorizeUrl(serviceId: string, userId: string, tenantId?: string): string | undefined {
    for (const registration of this.registrations.get(serviceId) ?? []) {
      for (const mountPath of registration.mountPaths) {
        const params = [...mountPath.matchAll(/:(\w+)/g)].map((m) => m[1]);
        if (!params.every((p) => p === 'userId' || (p === 'tenantId' && tenantId))) continue;
        return mountPath.replace(/:(\w+)/g, (_, p: string) => encodeURIComponent(p === 'userId' ? userId : tenantId!));
      }
    }
    return undefined;
  }
}

export function createEveryAuth(config?: EveryAuthConfig): EveryAuth {
  const everyauth = new EveryAuth();
  if (config) everyauth.config(config);
  return everyauth;
}
