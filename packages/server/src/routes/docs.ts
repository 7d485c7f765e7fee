import type { FastifyInstance, FastifySchema } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';

/**
 * @fastify/swagger's `transform`: states on each operation which API key scope it needs (from the
 * route's `config.access`, which the authentication hook enforces), and marks public routes as
 * needing no key, so the document says what the server does.
 */
export function describeAccess({ schema, url, route }: { schema: FastifySchema; url: string; route: { config?: unknown } }): {
  schema: FastifySchema;
  url: string;
} {
  const access = (route.config as { access?: string } | undefined)?.access ?? 'admin';
  const base = (schema ?? {}) as FastifySchema & { description?: string };
  if (access === 'public') return { schema: { ...base, security: [] } as FastifySchema, url };
  const needs = `Needs an API key with the \`${access}\` scope${access === 'admin' ? '' : ' (or `admin`)'}.`;
  return { schema: { ...base, description: base.description ? `${base.description}\n\n${needs}` : needs } as FastifySchema, url };
}

/** Where the API reference page is served; the console links to it. */
export const DOCS_PATH = '/docs';

/**
 * The OpenAPI document at /v1/openapi.json and an API reference rendered from it at /docs, both
 * public: the document describes routes and schemas, never a key or a token, and API viewers and
 * client generators fetch it without credentials. Kept out of the rate limit (it is static).
 */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  // Every route of this plugin (swagger-ui registers its own) is public; the hook applies to this
  // plugin's routes only, by Fastify's encapsulation.
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: 'public', rateLimit: false };
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    uiConfig: { docExpansion: 'list', deepLinking: true },
    // The page loads only its own assets and the document from this origin.
    staticCSP: true,
  });
}
