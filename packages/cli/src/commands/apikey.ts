import { Option, type Command } from 'commander';
import { NotFound, ServerUnavailable, errorFromJSON } from '@everyauth/core';
import type { ApiKeySummary, Scope } from '@everyauth/server';
import { contextOf, type CliIo } from '../context.js';
import { withHint } from '../errors.js';

/**
 * API keys of the server. On an embedded profile they are written to the store the server runs on
 * (so the first admin key can be made before any key exists); on a remote profile through the
 * server's /v1/api-keys routes, which need an `admin` key.
 */
export function registerApiKey(program: Command, io: CliIo): void {
  const apikey = program.command('apikey').description('API keys for the EveryAuth server (`everyauth serve`)');

  apikey
    .command('create')
    .description('create an API key; it is shown once')
    .requiredOption('--name <name>', 'what the key is for, e.g. "billing app"')
    .addOption(
      new Option(
        '--scope <scope...>',
        'admin (everything), tokens:read (read tokens and look things up) or proxy (call provider APIs through /v1/proxy only)',
      )
        .choices(['admin', 'tokens:read', 'proxy'])
        .default(['tokens:read']),
    )
    .action(async (options: { name: string; scope: Scope[] }, command: Command) => {
      const ctx = contextOf(io, command);
      const created = await ctx.withStoreOrRemote({
        local: async (store) => {
          const { createApiKey } = await loadServer();
          const made = await createApiKey(store, { name: options.name, scopes: options.scope });
          return { ...made.summary, key: made.key };
        },
        remote: (server, key) =>
          call<ApiKeySummary & { key: string }>(server, key, 'POST', '/v1/api-keys', { name: options.name, scopes: options.scope }),
      });
      if (ctx.out.json) return ctx.out.data(created);
      ctx.out.line(created.key);
      ctx.out.note(
        `Created API key ${created.id} ("${created.name}", ${created.scopes.join(', ')}). It is shown only this once: store it in your secret manager now.`,
      );
    });

  apikey
    .command('ls')
    .description('list API keys (never the keys themselves)')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const keys = await ctx.withStoreOrRemote({
        local: async (store) => (await loadServer()).listApiKeys(store),
        remote: (server, key) => call<ApiKeySummary[]>(server, key, 'GET', '/v1/api-keys'),
      });
      ctx.out.list(
        keys,
        [
          { header: 'id', value: (k) => k.id },
          { header: 'name', value: (k) => k.name },
          { header: 'scopes', value: (k) => k.scopes.join(', ') },
          { header: 'created', value: (k) => k.createdAt },
        ],
        { empty: 'No API keys. Create one with `everyauth apikey create --name <name> --scope admin`.' },
      );
    });

  apikey
    .command('rm')
    .description('delete an API key; it stops working within seconds on every replica')
    .argument('<id>', 'API key id (see `everyauth apikey ls`)')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const deleted = await ctx.withStoreOrRemote({
        local: async (store) => (await loadServer()).deleteApiKey(store, id),
        remote: async (server, key) => (await call<undefined>(server, key, 'DELETE', `/v1/api-keys/${encodeURIComponent(id)}`), true),
      });
      if (!deleted) throw new NotFound('api_key', id);
      if (ctx.out.json) return ctx.out.data({ id, deleted: true });
      ctx.out.line(`Deleted API key ${id}.`);
    });
}

/** The server package loads only for these commands: it brings Fastify along. */
const loadServer = () => import('@everyauth/server');

/** One admin call to the server; its error JSON becomes the registered typed error, with the server's message. */
async function call<T>(server: string, apiKey: string, method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${server.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    throw withHint(
      new ServerUnavailable(server, timedOut ? 'timeout' : 'unreachable', { cause: error }),
      "Check the profile's server URL.",
    );
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (response.ok) return json as T;
  throw errorFromJSON(response.status, json, server);
}
