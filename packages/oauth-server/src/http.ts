/** The Node HTTP plumbing the authorization server's own handlers and its loopback listener share. */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Whether a request URL (path and query) is at or under `basePath`; everything is under `''`. */
export function isUnder(url: string, basePath: string): boolean {
  return basePath === '' || url === basePath || url.startsWith(`${basePath}/`) || url.startsWith(`${basePath}?`);
}

/** An HTML answer that is never cached, runs no script and is never framed. */
export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No script at all, and never in a frame: a consent page that can be framed can be clickjacked.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'",
    'x-frame-options': 'DENY',
  });
  res.end(html);
}

/** The request body as text; more than `limit` bytes rejects with `statusCode` 413. */
export async function readBody(req: IncomingMessage, limit = 16 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error('the form is too large'), { statusCode: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A plain HTTP server on 127.0.0.1. */
export interface LoopbackListener {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** Stops listening and drops keep-alive connections (which would otherwise hold close() open). */
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 at `port` (default: a free one). */
export async function listenOnLoopback(handler: RequestListener, port = 0): Promise<LoopbackListener> {
  const server = createServer(handler);
  const actual = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  return { origin: `http://127.0.0.1:${actual}`, close: () => closeServer(server) };
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  server.closeAllConnections();
  await closed;
}
