/**
 * A third-party API stand-in on 127.0.0.1: routes answer with the provider's real wire format;
 * every request is recorded (method, URL, headers) so tests can see exactly what was sent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProviderInput } from '@everyauth/core';

export interface RecordedRequest {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Route = (
  req: RecordedRequest,
) =>
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | Promise<{ status: number; body?: unknown; headers?: Record<string, string> }>;

export interface ApiStandIn {
  readonly origin: string;
  readonly requests: RecordedRequest[];
  /** `METHOD /path` → handler; the path is matched without its query. */
  route(key: string, handler: Route): void;
  close(): Promise<void>;
}

export async function startApiStandIn(): Promise<ApiStandIn> {
  const routes = new Map<string, Route>();
  const requests: RecordedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const handler = routes.get(`${recorded.method} ${url.pathname}`);
      const answer = handler ? await handler(recorded) : { status: 404, body: { message: 'Not Found' } };
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status, {
        'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json',
        ...answer.headers,
      });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    requests,
    route: (key, handler) => void routes.set(key, handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * An API-key provider like Anthropic's over a stand-in at `origin`: the key typed into the form goes
 * in `X-Api-Key`, checked by a test request to GET /v1/me (the test adds that route) whose
 * refusals carry `{ error: { message } }`. `overrides` replace whole top-level parts.
 */
export function keyedProvider(origin: string, overrides: Partial<ProviderInput> = {}): ProviderInput {
  return {
    id: 'keyed',
    name: 'Keyed',
    docs: 'https://example.test/docs',
    kind: 'api_key',
    api: { baseUrls: [origin] },
    fields: [{ name: 'apiKey', label: 'API key' }],
    apply: { headers: { 'X-Api-Key': '{apiKey}' } },
    test: { url: `${origin}/v1/me`, errorPath: 'error.message', profile: { id: 'id' } },
    ...overrides,
  };
}
