import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch as send, type RequestInit as UndiciRequestInit } from 'undici';
import { ProxyRefused, UpstreamFailed } from '../errors.js';
import { outgoingBody } from './body.js';
import { requestHeaders, responseHeaders } from './headers.js';
import { DEFAULT_RETRY_BUDGET, retryDelay, type RetryBudget } from './retry.js';
import { resolveTarget } from './target.js';

/** A credential ready to go on one request. Each kind (OAuth 2 bearer today) knows how to apply itself. */
export interface ProxyCredential {
  identityId: string;
  /** Puts the credential on the outgoing request's header fields. */
  apply(headers: Headers): void;
}

/** What the proxy needs of the broker for one request: where it may go, and the credential. */
export interface ProxySubject {
  serviceId: string;
  /** The service's API base URLs, canonical (see `apiBase`): the only places the credential goes. */
  baseUrls: readonly string[];
  /** The credential to send; `renew` asks for a renewed one (after a 401), shared with concurrent callers. */
  credential(renew: boolean): Promise<ProxyCredential>;
  /** The provider refused a renewed credential too: the grant is gone. */
  rejected(identityId: string, status: number): Promise<void>;
}

export interface ProxyOptions {
  /** Time to open the connection (TCP and TLS) to the API (default 10 s). */
  connectTimeoutMs: number;
  /** Time from sending the request to the response's header (default 60 s). */
  firstByteTimeoutMs: number;
  /** Longest pause between two chunks of the response body (default 60 s). */
  idleTimeoutMs: number;
  /** A streamed request body up to this size is kept so it can be resent after a 401 or 429; larger ones stream once (default 1 MiB). */
  replayLimitBytes: number;
  /** Retries of 429 and 503 with Retry-After, idempotent methods only. */
  retry: RetryBudget;
  /** Credential-bearing response fields to pass back anyway (`set-cookie`, for an API that needs its cookie). */
  passResponseHeaders: string[];
}

export const DEFAULT_PROXY_OPTIONS: ProxyOptions = {
  connectTimeoutMs: 10_000,
  firstByteTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  replayLimitBytes: 1024 * 1024,
  retry: DEFAULT_RETRY_BUDGET,
  passResponseHeaders: [],
};

/** RFC 9110 §5.6.2 token; fetch refuses CONNECT, TRACE and TRACK itself. */
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const NULL_BODY = new Set([101, 204, 205, 304]);

const PHASES: Record<string, UpstreamFailed['phase']> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'first_byte',
  UND_ERR_BODY_TIMEOUT: 'idle',
};

/**
 * Sends requests to a service's API with its credential: checks the target, filters header fields
 * both ways, renews the credential once on a 401, retries 429/503 within a budget, and streams the
 * bodies. Redirects are handed back, never followed, so the credential stays on the declared hosts.
 */
export class CredentialProxy {
  readonly options: ProxyOptions;
  private readonly agent: Agent;

  constructor(options: Partial<ProxyOptions> = {}) {
    this.options = { ...DEFAULT_PROXY_OPTIONS, ...options };
    this.agent = new Agent({
      connect: { timeout: this.options.connectTimeoutMs },
      headersTimeout: this.options.firstByteTimeoutMs,
      bodyTimeout: this.options.idleTimeoutMs,
    });
  }

  async fetch(subject: ProxySubject, pathOrUrl: string, init: RequestInit = {}): Promise<Response> {
    const method = (init.method ?? 'GET').toUpperCase();
    if (!METHOD.test(method) || ['CONNECT', 'TRACE', 'TRACK'].includes(method)) {
      throw new ProxyRefused('header', `The method ${JSON.stringify(method.slice(0, 20))} cannot be proxied (RFC 9110 §9).`);
    }
    const target = resolveTarget(subject.baseUrls, pathOrUrl);
    const headers = requestHeaders(init.headers);
    const body = await outgoingBody(init.body, this.options.replayLimitBytes);
    let credential = await subject.credential(false);
    let renewed = false;
    let retried = 0;
    let waited = 0;
    for (;;) {
      const sent = new Headers(headers);
      credential.apply(sent);
      const response = await this.send(subject.serviceId, target, method, sent, body.next(), init.signal ?? undefined);
      if (response.status === 401 && body.replayable && !renewed) {
        // RFC 6750 §3.1 invalid_token: the token was revoked or expired early. Renew once and resend.
        await response.body?.cancel();
        renewed = true;
        credential = await subject.credential(true);
        continue;
      }
      if (response.status === 401 && renewed) await subject.rejected(credential.identityId, response.status);
      const wait = body.replayable ? retryDelay(response, method, retried, waited, this.options.retry) : undefined;
      if (wait !== undefined) {
        await response.body?.cancel();
        await sleep(wait, undefined, { signal: init.signal ?? undefined });
        retried++;
        waited += wait;
        continue;
      }
      return new Response(NULL_BODY.has(response.status) || method === 'HEAD' ? null : response.body, {
        status: response.status,
        statusText: response.statusText,
        headers: responseHeaders(response.headers, this.options.passResponseHeaders),
      });
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async send(
    serviceId: string,
    target: URL,
    method: string,
    headers: Headers,
    body: BodyInit | null,
    signal?: AbortSignal,
  ): Promise<Response> {
    try {
      return (await send(target, {
        method,
        headers,
        body,
        signal,
        redirect: 'manual',
        dispatcher: this.agent,
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as unknown as UndiciRequestInit)) as unknown as Response;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const code = ((err as Error).cause as { code?: string } | undefined)?.code ?? '';
      throw new UpstreamFailed(serviceId, PHASES[code] ?? 'network', { cause: err });
    }
  }
}
