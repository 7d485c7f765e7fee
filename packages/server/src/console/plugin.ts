import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The assets ship as plain files (no build step). They sit in src/console/assets, which is found
 * from both src/console/plugin.ts (sources, under tsx or vitest) and dist/console/plugin.js (built):
 * two levels up is the package either way.
 */
export const CONSOLE_ASSETS_DIR = fileURLToPath(new URL('../../src/console/assets/', import.meta.url));

/** Where the console lives. `/console/assets/*` only, so a service named `console` keeps its `/console/callback`. */
export const CONSOLE_PATH = '/console';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Scripts, styles and API calls from this origin only; no inline script, no framing. The page
 * builds its DOM with textContent, so this is defence in depth rather than the only guard.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface ConsoleRoutesOptions {
  /** Another folder of assets (tests); default {@link CONSOLE_ASSETS_DIR}. */
  assetsDir?: string;
}

interface Asset {
  body: Buffer;
  type: string;
}

/** Reads the assets once: a fixed set of names, so no request path ever reaches the file system. */
async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { body: await readFile(join(dir, name)), type });
  }
  if (!assets.has('index.html')) throw new Error(`The console's index.html is missing from ${dir}.`);
  return assets;
}

function send(reply: FastifyReply, asset: Asset): FastifyReply {
  return (
    reply
      .header('content-type', asset.type)
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      // Revalidated on each load: a small console, and an upgraded server must not run stale scripts.
      .header('cache-control', 'no-cache')
      .send(asset.body)
  );
}

/**
 * The web console: a single page that talks to /v1 with an API key. Public routes (the page signs
 * in against the API itself), kept out of the rate limit and the OpenAPI document.
 */
export async function consoleRoutes(app: FastifyInstance, options: ConsoleRoutesOptions = {}): Promise<void> {
  const assets = await loadAssets(options.assetsDir ?? CONSOLE_ASSETS_DIR);
  const index = assets.get('index.html')!;
  const config = { access: 'public' as const, rateLimit: false as const };
  const schema = { hide: true };

  // The server's root has nothing else to show a person who opens it in a browser.
  if (!app.hasRoute({ method: 'GET', url: '/' }))
    app.get('/', { config, schema }, (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`, 302));
  app.get(CONSOLE_PATH, { config, schema }, (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`, 302));
  app.get(`${CONSOLE_PATH}/`, { config, schema }, (_request, reply) => send(reply, index));
  app.get<{ Params: { name: string } }>(`${CONSOLE_PATH}/assets/:name`, { config, schema }, (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset || request.params.name === 'index.html') {
      return reply.code(404).send({ error: 'not_found', message: `The console has no asset "${request.params.name}".`, retryable: false });
    }
    return send(reply, asset);
  });
}
