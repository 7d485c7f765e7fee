/**
 * The JSON form of an error, as the server sends it and RemoteBroker reads it: the stable code as
 * `error`, the message, whether to retry, the class name as `type`, and the class's own fields.
 */
export interface ErrorJSON {
  error: string;
  message: string;
  retryable: boolean;
  type: string;
  [field: string]: unknown;
}

/**
 * Every error EveryAuth raises on purpose is an EveryAuthError: a stable `code` for programs, a
 * message that says what was wrong and what to do, and `status` for HTTP front ends. Messages never
 * carry a token or a secret.
 *
 * Each subclass declares its code, status and `retryable` in its constructor, its extra fields in
 * `details()` and how to rebuild itself from JSON in `fromJSON`, and is registered with
 * `registerError`: the server's error bodies, RemoteBroker's reconstruction and the front ends'
 * re-exports all derive from that one registry.
 */
export class EveryAuthError extends Error {
  readonly code: string;
  readonly status: number;
  /** Whether the same call may succeed later without any change (provider down, lease busy). */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { status?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.retryable = options.retryable ?? false;
  }

  /** The fields beyond code, message and `retryable` that a client needs to rebuild this error. */
  protected details(): Record<string, unknown> {
    return {};
  }

  toJSON(): ErrorJSON {
    return { error: this.code, message: this.message, retryable: this.retryable, type: this.name, ...this.details() };
  }

  /** Rebuilds the error from its JSON form; `status` is the HTTP status it came with. */
  static fromJSON(body: ErrorJSON, status: number): EveryAuthError {
    return new EveryAuthError(body.error, body.message, { status, retryable: body.retryable });
  }
}

/** A class in the error registry: its name is the JSON `type`, `fromJSON` rebuilds an instance. */
export interface ErrorClass {
  readonly name: string;
  readonly prototype: EveryAuthError;
  fromJSON(body: ErrorJSON, status: number): EveryAuthError;
}

const registry = new Map<string, ErrorClass>();

/**
 * Adds error classes to the registry, by class name. Core registers its own below; the server
 * registers its server-only errors (unauthorized, rate limited …) the same way.
 */
export function registerError(...classes: ErrorClass[]): void {
  for (const c of classes) {
    const known = registry.get(c.name);
    if (known && known !== c) throw new TypeError(`Two error classes are registered as "${c.name}".`);
    registry.set(c.name, c);
  }
}

/** Every registered error class, by name. */
export function registeredErrors(): ReadonlyMap<string, ErrorClass> {
  return registry;
}

/**
 * Rebuilds an error's JSON form into the registered class it names, with the sender's exact
 * message; a body without a known `type` becomes a plain EveryAuthError with its code and status.
 */
export function errorFromJSON(status: number, body: unknown, sender = 'the server'): EveryAuthError {
  const e = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const json: ErrorJSON = {
    ...e,
    error: typeof e.error === 'string' ? e.error : `http_${status}`,
    message: typeof e.message === 'string' ? e.message : `The EveryAuth server at ${sender} answered HTTP ${status}.`,
    retryable: e.retryable === true || status === 429 || status === 503,
    type: typeof e.type === 'string' ? e.type : 'EveryAuthError',
  };
  const cls = registry.get(json.type) ?? EveryAuthError;
  const error = cls.fromJSON(json, status);
  // The sender's wording, exactly: the typed constructors rebuild most messages but not every detail.
  error.message = json.message;
  return error;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Bad input from the caller: a malformed id, an unknown option, a filter that cannot be used. */
export class InvalidInput extends EveryAuthError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('invalid_input', message, { status: 400 });
  }

  protected override details(): Record<string, unknown> {
    return this.field ? { field: this.field } : {};
  }

  static override fromJSON(body: ErrorJSON): InvalidInput {
    return new InvalidInput(body.message, str(body.field));
  }
}

/** Configuration that cannot work: a missing master key, a provider without a client secret. */
export class ConfigurationError extends EveryAuthError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('configuration_error', message, { status: 500, ...options });
  }

  static override fromJSON(body: ErrorJSON): ConfigurationError {
    return new ConfigurationError(body.message);
  }
}

export class NotFound extends EveryAuthError {
  constructor(
    readonly kind: 'provider' | 'service' | 'identity' | 'session' | 'api_key',
    readonly id: string,
  ) {
    super(`${kind}_not_found`, `No ${kind.replace('_', ' ')} "${id}" exists.`, { status: 404 });
  }

  protected override details(): Record<string, unknown> {
    return { kind: this.kind, id: this.id };
  }

  static override fromJSON(body: ErrorJSON): NotFound {
    return new NotFound(body.kind as NotFound['kind'], String(body.id));
  }
}

export class Conflict extends EveryAuthError {
  constructor(message: string) {
    super('conflict', message, { status: 409 });
  }

  static override fromJSON(body: ErrorJSON): Conflict {
    return new Conflict(body.message);
  }
}

/** More than one identity matches a lookup that must name exactly one. */
export class AmbiguousIdentity extends EveryAuthError {
  constructor(
    readonly serviceId: string,
    readonly count: number,
  ) {
    super(
      'ambiguous_identity',
      `More than one identity of service "${serviceId}" matches; narrow the filter (tenantId, tags) or ask by identity id.`,
      { status: 409 },
    );
  }

  protected override details(): Record<string, unknown> {
    return { serviceId: this.serviceId, count: this.count };
  }

  static override fromJSON(body: ErrorJSON): AmbiguousIdentity {
    return new AmbiguousIdentity(String(body.serviceId), Number(body.count));
  }
}

/** A value in the vault could not be decrypted: wrong key, unknown key id, or a ciphertext moved to another row. */
export class DecryptionFailed extends EveryAuthError {
  constructor(message: string) {
    super('decryption_failed', message, { status: 500 });
  }

  static override fromJSON(body: ErrorJSON): DecryptionFailed {
    return new DecryptionFailed(body.message);
  }
}

/**
 * The authorization flow failed at the callback. `error` is the OAuth error code shown to the app
 * (RFC 6749 §4.1.2.1 where the provider sent one), `finishedUrl` where the user should land, when known.
 */
export class AuthorizationFailed extends EveryAuthError {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly context: { serviceId?: string; userId?: string; tenantId?: string; finishedUrl?: string } = {},
    options: { cause?: unknown } = {},
  ) {
    super(error, description, { status: 400, ...options });
  }

  protected override details(): Record<string, unknown> {
    return { description: this.description, context: this.context };
  }

  static override fromJSON(body: ErrorJSON): AuthorizationFailed {
    const context = body.context && typeof body.context === 'object' ? (body.context as AuthorizationFailed['context']) : {};
    return new AuthorizationFailed(body.error, str(body.description) ?? body.message, context);
  }
}

/**
 * The grant is gone (RFC 6749 §5.2 `invalid_grant` on refresh, or revoked): the user must authorize
 * again. The identity is marked `needs_reauth`; its old tokens are kept for inspection.
 */
export class ReauthorizationRequired extends EveryAuthError {
  /** `needs_reauth` (the grant is gone) or `dead` (refreshes failed for days); either comes back through a reconnect. */
  readonly identityStatus: 'needs_reauth' | 'dead';
  /** A link that re-authorizes this same identity (same id, tags, metadata), when the broker can make one. */
  public reconnectUrl?: string;

  constructor(
    readonly serviceId: string,
    readonly identityId: string,
    readonly userId: string,
    readonly tenantId: string | undefined,
    /** Where to send the user to authorize again, when the front end knows it. */
    public authorizeUrl?: string,
    options: { cause?: unknown; identityStatus?: 'needs_reauth' | 'dead'; reconnectUrl?: string } = {},
  ) {
    const dead = options.identityStatus === 'dead';
    super(
      'reauthorization_required',
      `${dead ? `The identity of user "${userId}" on service "${serviceId}" is dead: its refreshes failed for days` : `The grant of user "${userId}" on service "${serviceId}" is no longer valid`}; send the user to authorize again${authorizeUrl ? ` at ${authorizeUrl}` : ''}${options.reconnectUrl ? ` or reconnect at ${options.reconnectUrl}` : ''}.`,
      { status: 409, cause: options.cause },
    );
    this.identityStatus = options.identityStatus ?? 'needs_reauth';
    this.reconnectUrl = options.reconnectUrl;
  }

  protected override details(): Record<string, unknown> {
    return {
      serviceId: this.serviceId,
      identityId: this.identityId,
      userId: this.userId,
      tenantId: this.tenantId,
      identityStatus: this.identityStatus,
      authorizeUrl: this.authorizeUrl,
      reconnectUrl: this.reconnectUrl,
    };
  }

  static override fromJSON(body: ErrorJSON): ReauthorizationRequired {
    return new ReauthorizationRequired(
      String(body.serviceId),
      String(body.identityId),
      String(body.userId),
      str(body.tenantId),
      str(body.authorizeUrl),
      { identityStatus: body.identityStatus === 'dead' ? 'dead' : 'needs_reauth', reconnectUrl: str(body.reconnectUrl) },
    );
  }
}

/** The provider could not be reached or answered 5xx / 429 after the retries; try again later. */
export class ProviderUnavailable extends EveryAuthError {
  constructor(
    readonly providerId: string,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    super('provider_unavailable', `Provider "${providerId}" is unavailable (${detail}); try again later.`, {
      status: 503,
      retryable: true,
      ...options,
    });
  }

  protected override details(): Record<string, unknown> {
    return { providerId: this.providerId };
  }

  static override fromJSON(body: ErrorJSON): ProviderUnavailable {
    return new ProviderUnavailable(String(body.providerId), '');
  }
}

/** The provider answered the token request with an error other than invalid_grant, or with a body we cannot use. */
export class ProviderError extends EveryAuthError {
  constructor(
    readonly providerId: string,
    readonly error: string,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    super('provider_error', `Provider "${providerId}" rejected the request: ${error}${detail ? ` (${detail})` : ''}.`, {
      status: 502,
      ...options,
    });
  }

  protected override details(): Record<string, unknown> {
    // `error` is the JSON form's code, so the provider's own error code travels as `providerError`.
    return { providerId: this.providerId, providerError: this.error };
  }

  static override fromJSON(body: ErrorJSON): ProviderError {
    return new ProviderError(String(body.providerId), String(body.providerError), '');
  }
}

/**
 * The provider refused a credential typed in or imported (its test request answered non-2xx, or
 * its first grant failed): nothing was stored. `providerMessage` is the provider's own words, any
 * secret value removed.
 */
export class CredentialRefused extends EveryAuthError {
  constructor(
    readonly providerId: string,
    readonly providerMessage: string,
    readonly httpStatus: number,
  ) {
    super('credential_refused', `Provider "${providerId}" refused the credential (HTTP ${httpStatus}): ${providerMessage}`, {
      status: 400,
    });
  }

  protected override details(): Record<string, unknown> {
    return { providerId: this.providerId, providerMessage: this.providerMessage, httpStatus: this.httpStatus };
  }

  static override fromJSON(body: ErrorJSON): CredentialRefused {
    return new CredentialRefused(String(body.providerId), String(body.providerMessage ?? ''), Number(body.httpStatus ?? 400));
  }
}

/** A client (RemoteBroker, the CLI) could not reach the EveryAuth server, or it did not answer in time. */
export class ServerUnavailable extends EveryAuthError {
  constructor(
    readonly server: string,
    readonly reason: 'timeout' | 'unreachable',
    options: { cause?: unknown } = {},
  ) {
    super(
      'server_unavailable',
      `The EveryAuth server at ${server} ${reason === 'timeout' ? 'did not answer in time' : 'cannot be reached'}; try again later.`,
      { status: 503, retryable: true, ...options },
    );
  }

  protected override details(): Record<string, unknown> {
    return { server: this.server, reason: this.reason };
  }

  static override fromJSON(body: ErrorJSON): ServerUnavailable {
    return new ServerUnavailable(String(body.server), body.reason === 'timeout' ? 'timeout' : 'unreachable');
  }
}

/**
 * The proxy refused a request before sending it, because the credential would have gone where it
 * must not (`reason`: `target`, `header`, `body`, `config`). Nothing was sent to the provider.
 */
export class ProxyRefused extends EveryAuthError {
  constructor(
    readonly reason: 'target' | 'header' | 'body' | 'config',
    message: string,
  ) {
    super('proxy_refused', message, { status: reason === 'config' ? 409 : 400 });
  }

  protected override details(): Record<string, unknown> {
    return { reason: this.reason };
  }

  static override fromJSON(body: ErrorJSON): ProxyRefused {
    const reason = ['target', 'header', 'body', 'config'].includes(String(body.reason)) ? body.reason : 'target';
    return new ProxyRefused(reason as ProxyRefused['reason'], body.message);
  }
}

/** The API behind the proxy did not answer within a timeout (`upstream_timeout`), or broke the connection (`upstream_unreachable`). */
export class UpstreamFailed extends EveryAuthError {
  constructor(
    readonly serviceId: string,
    readonly phase: 'connect' | 'first_byte' | 'idle' | 'network',
    options: { cause?: unknown } = {},
  ) {
    const network = phase === 'network';
    super(
      network ? 'upstream_unreachable' : 'upstream_timeout',
      network
        ? `The API of service "${serviceId}" broke the connection or could not be reached; try again later.`
        : `The API of service "${serviceId}" did not answer in time (${phase.replace('_', ' ')} timeout); try again later.`,
      { status: network ? 502 : 504, retryable: true, ...options },
    );
  }

  protected override details(): Record<string, unknown> {
    return { serviceId: this.serviceId, phase: this.phase };
  }

  static override fromJSON(body: ErrorJSON): UpstreamFailed {
    const phase = ['connect', 'first_byte', 'idle'].includes(String(body.phase)) ? body.phase : 'network';
    return new UpstreamFailed(String(body.serviceId), phase as UpstreamFailed['phase']);
  }
}

/**
 * Core's errors, by name: the registry's first entries, and what front ends re-export
 * (`export * from` a module that re-exports this object's members keeps one list).
 */
export const coreErrors = {
  EveryAuthError,
  InvalidInput,
  ConfigurationError,
  NotFound,
  Conflict,
  AmbiguousIdentity,
  DecryptionFailed,
  AuthorizationFailed,
  ReauthorizationRequired,
  ProviderUnavailable,
  ProviderError,
  CredentialRefused,
  ServerUnavailable,
  ProxyRefused,
  UpstreamFailed,
} as const;

registerError(...Object.values(coreErrors));
