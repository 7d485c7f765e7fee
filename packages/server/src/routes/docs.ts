import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';

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
