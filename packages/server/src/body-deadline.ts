import type { onRequestHookHandler } from 'fastify';

/** What Node itself writes to a sender whose request timed out (`requestTimeoutResponse` in Node's http server). */
const TIMED_OUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

/**
 * The deadline for a request's body. Node's own `requestTimeout` covers headers and body together
 * and cannot be set per route, so it would cut off every long upload through `/v1/proxy` (1 GiB
 * over a 100 MB/s link takes ten seconds). The server therefore leaves it off, keeps Node's
 * `headersTimeout` for the headers, and sets the body's deadline here, per route:
 * - a route that reads its body: the whole body within `timeoutMs` of its headers;
 * - a route whose body streams on (`config.streamsBody`, the proxy): as long as it takes, but never
 *   `timeoutMs` without a byte.
 * A sender past its deadline gets Node's 408 (when nothing was answered yet) and its connection is
 * closed, so a few slow clients cannot hold every socket.
 */
export function bodyDeadline(timeoutMs: number): onRequestHookHandler {
  return (request, reply, done) => {
    const raw = request.raw;
    const hasBody = raw.headers['transfer-encoding'] !== undefined || Number(raw.headers['content-length'] ?? 0) > 0;
    if (!hasBody || raw.complete) return done();
    const socket = raw.socket;
    const cut = () => {
      if (raw.complete) return;
      if (!reply.raw.headersSent && socket.writable) socket.write(TIMED_OUT);
      socket.destroy();
    };
    if (request.routeOptions.config.streamsBody) {
      socket.setTimeout(timeoutMs, cut);
      raw.once('end', () => socket.setTimeout(0).off('timeout', cut));
    } else {
      const timer = setTimeout(cut, timeoutMs);
      raw.once('end', () => clearTimeout(timer));
      raw.once('close', () => clearTimeout(timer));
    }
    done();
  };
}
