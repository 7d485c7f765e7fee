/**
 * Every error EveryAuth raises on purpose is an EveryAuthError: a stable `code` for programs, a
 * message that says what was wrong and what to do, and `status` for HTTP front ends. Messages never
 * carry a token or a secret.
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

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, retryable: this.retryable };
  }
}

/** Bad input from the caller: a malformed id, an unknown option, a filter that cannot be used. */
export class InvalidInput extends EveryAuthError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('invalid_input', message, { status: 400 });
  }
}

/** Configuration that cannot work: a missing master key, a provider without a client secret. */
export class ConfigurationError extends EveryAuthError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('configuration_error', message, { status: 500, ...options });
  }
}

export class NotFound extends EveryAuthError {
  constructor(
    readonly kind: 'provider' | 'service' | 'identity' | 'session' | 'api_key',
    readonly id: string,
  ) {
    super(`${kind}_not_found`, `No ${kind.replace('_', ' ')} "${id}" exists.`, { status: 404 });
  }
}

export class Conflict extends EveryAuthError {
  constructor(message: string) {
    super('conflict', message, { status: 409 });
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
}

/** A value in the vault could not be decrypted: wrong key, unknown key id, or a ciphertext moved to another row. */
export class DecryptionFailed extends EveryAuthError {
  constructor(message: string) {
    super('decryption_failed', message, { status: 500 });
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
}

/**
 * The grant is gone (RFC 6749 §5.2 `invalid_grant` on refresh, or revoked): the user must authorize
 * again. The identity is marked `needs_reauth`; its old tokens are kept for inspection.
 */
export class ReauthorizationRequired extends EveryAuthError {
  constructor(
    readonly serviceId: string,
    readonly identityId: string,
    readonly userId: string,
    readonly tenantId: string | undefined,
    /** Where to send the user to authorize again, when the front end knows it. */
    public authorizeUrl?: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      'reauthorization_required',
      `The grant of user "${userId}" on service "${serviceId}" is no longer valid; send the user to authorize again${authorizeUrl ? ` at ${authorizeUrl}` : ''}.`,
      { status: 409, ...options },
    );
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      serviceId: this.serviceId,
      identityId: this.identityId,
      userId: this.userId,
      tenantId: this.tenantId,
      authorizeUrl: this.authorizeUrl,
    };
  }
}

/** The provider could not be reached or answered 5xx / 429 after the retries; try again later. */
export class ProviderUnavailable extends EveryAuthError {
  /** What went wrong at the provider, where known: `timeout`, `5xx`, `rate_limited` or `network`. */
  readonly reason?: string;
  /** How long until the next attempt at the provider; asking again sooner gets this same answer. */
  readonly retryAfterMs?: number;

  constructor(
    readonly providerId: string,
    detail: string,
    options: { cause?: unknown; reason?: string; retryAfterMs?: number } = {},
  ) {
    const { reason, retryAfterMs, ...rest } = options;
    const retry = retryAfterMs === undefined ? 'try again later' : `try again in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s`;
    super('provider_unavailable', `Provider "${providerId}" is unavailable (${detail}); ${retry}.`, {
      status: 503,
      retryable: true,
      ...rest,
    });
    if (reason !== undefined) this.reason = reason;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), providerId: this.providerId, reason: this.reason, retryAfterMs: this.retryAfterMs };
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
}
