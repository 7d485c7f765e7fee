import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LookupFunction } from 'node:net';
import type { Agent, Dispatcher } from 'undici';
import type { FetchInit } from '../broker.js';
import { ProxyRefused, UpstreamFailed } from '../errors.js';
import type { AuthFailure } from '../catalog/schema.js';
import { ApiAgents } from './agents.js';
import { credentialRefused } from './auth-failure.js';
import { outgoingBody } from './body.js';
import { requestHeaders, responseHeaders, toHeaders, type FieldsInit, type RequestFields, type ResponseFields } from './headers.js';
import { DEFAULT_RETRY_BUDGET, retryDelay, type RetryBudget } from './retry.js';
import { resolveTarget } from './target.js';

/** A credential ready to go on one request; each credential kind knows how to apply itself. */
export interface ProxyCredential {
  identityId: string;
  /**
   * Puts the credential on one request: sets header fields, and returns the URL to send to (a key
   * that goes in the query, an OAuth 1.0a signature over method and URL need it).
   */
  apply(headers: RequestFields, method: string, url: URL): URL;
}

/** What the proxy needs of the broker for one request: where it may go, and the credential. */
export interface ProxySubject {
  serviceId: string;
  /** The service's API base URLs, canonical (see `apiBase`): the only places the credential goes. */
  baseUrls: readonly string[];
  /** How the API refuses a credential besides 401, when its provider declares it (`api.authFailure`). */
  authFailure?: AuthFailure;
  /** The service's operator chose the hosts (`Services.apiHostsChosenByService`): they may resolve to private-network addresses (address.ts). */
  privateNetwork?: boolean;
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
  /** The resolver for the API's host names (default `dns.lookup`); every address it gives is checked before connecting. */
  lookup?: LookupFunction;
}

export const DEFAULT_PROXY_OPTIONS: ProxyOptions = {
  connectTimeoutMs: 10_000,
  firstByteTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  replayLimitBytes: 1024 * 1024,
  retry: DEFAULT_RETRY_BUDGET,
  passResponseHeaders: [],
};

/** What a proxied request gives: `fetch`'s `init`, or a Node request's parsed header fields (the server's route). */
export type ProxyInit = Omit<FetchInit, 'headers'> & { headers?: FieldsInit };

/**
 * The API's answer before it becomes a fetch `Response`: status, the header fields the caller may
 * see, and undici's body stream (null for HEAD and the statuses that have none). The server pipes
 * it to its reply as it is; `toResponse` gives embedded callers the standard type.
 */
export interface ProxiedResponse {
  status: number;
  headers: ResponseFields;
  body: Readable | null;
}

/** A `ProxiedResponse` as a fetch `Response`, its body read as the consumer pulls (with backpressure). */
export function toResponse(proxied: ProxiedResponse): Response {
  return new Response(proxied.body as unknown as ReadableStream | null, { status: proxied.status, headers: toHeaders(proxied.headers) });
}

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
  /** The connection pools, with the resolved-address rule; the test request of a typed-in credential uses them too. */
  readonly agents: ApiAgents;

  constructor(options: Partial<ProxyOptions> = {}) {
    this.options = { ...DEFAULT_PROXY_OPTIONS, ...options };
    this.agents = new ApiAgents(this.options);
  }

  /**
   * Sends one request as the subject, by the rules above, and gives back the answer with its body
   * still on the connection: the caller reads it, or destroys it to release the connection.
   */
  async request(subject: ProxySubject, pathOrUrl: string, init: ProxyInit = {}): Promise<ProxiedResponse> {
    const method = (init.method ?? 'GET').toUpperCase();
    if (!METHOD.test(method) || ['CONNECT', 'TRACE', 'TRACK'].includes(method)) {
      throw new ProxyRefused('header', `The method ${JSON.stringify(method.slice(0, 20))} cannot be proxied (RFC 9110 §9).`);
    }
    const target = resolveTarget(subject.baseUrls, pathOrUrl);
    const headers = requestHeaders(init.headers);
    const body = await outgoingBody(init.body, this.options.replayLimitBytes);
    const signal = init.signal ?? undefined;
    let credential = await subject.credential(false);
    let renewed = false;
    let retried = 0;
    let waited = 0;
    if (body.contentType && headers['content-type'] === undefined) headers['content-type'] = body.contentType;
    for (;;) {
      const sent = { ...headers };
      const url = credential.apply(sent, method, target);
      // A credential adds query parameters at most: it may not move the request.
      if (url !== target && (url.origin !== target.origin || url.pathname !== target.pathname)) {
        throw new ProxyRefused('target', 'The credential moved the request to another URL; nothing was sent.');
      }
      const agent = this.agents.for(subject.privateNetwork ?? false);
      const response = await this.send(agent, subject.serviceId, url, method, sent, body.next(), signal);
      const status = response.statusCode;
      const refused = await credentialRefused(response, subject.authFailure);
      if (refused && body.replayable && !renewed) {
        // RFC 6750 §3.1 invalid_token: the token was revoked or expired early. Renew once and resend.
        await response.body.dump();
        renewed = true;
        credential = await subject.credential(true);
        continue;
      }
      if (refused && renewed) await subject.rejected(credential.identityId, status);
      const wait = body.replayable
        ? retryDelay(status, response.headers['retry-after'], method, retried, waited, this.options.retry)
        : undefined;
      if (wait !== undefined) {
        await response.body.dump();
        await sleep(wait, undefined, { signal });
        retried++;
        waited += wait;
        continue;
      }
      const empty = NULL_BODY.has(status) || method === 'HEAD';
      if (empty) await response.body.dump();
      return { status, headers: responseHeaders(response.headers, this.options.passResponseHeaders), body: empty ? null : response.body };
    }
  }

  async close(): Promise<void> {
    await this.agents.close();
  }

  private async send(
    agent: Agent,
    serviceId: string,
    target: URL,
    method: string,
    headers: RequestFields,
    body: Uint8Array | AsyncIterable<Uint8Array> | null,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    // undici's request(), not fetch(): it writes an iterable body with backpressure, follows no
    // redirect, leaves content codings alone, and costs half as much per request.
    try {
      return await agent.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: method as Dispatcher.HttpMethod,
        headers,
        // undici writes any (async) iterable with backpressure; its type names only Readable.
        body: body as Dispatcher.RequestOptions['body'],
        signal,
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError' || signal?.aborted || err instanceof ProxyRefused) throw err;
      throw new UpstreamFailed(serviceId, PHASES[(err as { code?: string }).code ?? ''] ?? 'network', { cause: err });
    }
  }
}
