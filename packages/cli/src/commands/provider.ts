import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Provider, ProviderInput } from '@everyauth/core';
import { NotFound } from '@everyauth/core';
import { contextOf, type CliIo } from '../context.js';
import { UsageError } from '../errors.js';

export function registerProvider(program: Command, io: CliIo): void {
  const provider = program.command('provider').description('the provider catalog: built-in and custom providers');

  provider
    .command('ls')
    .description('list providers')
    .option('-s, --search <text>', 'only providers whose id or name contains this')
    .action(async (options: { search?: string }, command: Command) => {
      const ctx = contextOf(io, command);
      const providers = await ctx.withBroker((b) => b.listProviders({ search: options.search }));
      ctx.out.list(
        providers,
        [
          { header: 'id', value: (p) => p.id },
          { header: 'name', value: (p) => p.name },
          {
            header: 'kind',
            value: (p) => (p.custom ? 'custom' : 'built-in'),
            style: (text, p) => (p.custom ? ctx.out.color.cyan(text) : text),
          },
          { header: 'docs', value: (p) => p.docs },
        ],
        { empty: options.search ? `No provider matches "${options.search}".` : 'No providers.' },
      );
    });

  provider
    .command('get')
    .description('show a provider: endpoints, scopes, how tokens and profiles are read')
    .argument('<id>', 'provider id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const p = await ctx.withBroker((b) => b.getProvider(id));
      ctx.out.record(p, providerFields(p));
    });

  provider
    .command('add')
    .description('add a custom provider, by OpenID Connect / RFC 8414 discovery or from a JSON file')
    .argument('<id>', 'id for the new provider (lowercase letters, digits, dashes)')
    .option('--issuer <url>', 'discover the endpoints from this issuer')
    .option('--file <path>', 'a provider definition in the catalog format')
    .option('--name <name>', 'display name (with --issuer)')
    .option(
      '--register',
      'also register a client there (RFC 7591) and create service <id> with it; --issuer may be a remote MCP server URL (RFC 9728)',
    )
    .action(async (id: string, options: { issuer?: string; file?: string; name?: string; register?: boolean }, command: Command) => {
      const ctx = contextOf(io, command);
      if ((options.issuer === undefined) === (options.file === undefined)) {
        throw new UsageError('Give exactly one of --issuer <url> (discovery) or --file <provider.json>.', 'provider add');
      }
      if (options.register) {
        if (options.issuer === undefined) throw new UsageError('--register needs --issuer <url>.', 'provider add');
        const registered = await ctx.withBroker((b) => b.registerService({ serviceId: id, url: options.issuer!, name: options.name }));
        if (ctx.out.json) return ctx.out.data(registered);
        ctx.out.line(`Registered client ${registered.clientId} at ${options.issuer}; service "${id}" is ready (secret sealed).`);
        return ctx.out.note(`Next: send users to authorize "${id}"; its redirect URL is ${registered.redirectUrl}.`);
      }
      const added = await ctx.withBroker(async (b) => {
        if (options.issuer !== undefined) return b.discoverProvider(id, options.issuer, { name: options.name });
        return b.putProvider(await readDefinition(options.file!, id));
      });
      if (ctx.out.json) return ctx.out.data(added);
      ctx.out.line(`Added provider "${added.id}" (${added.name}).`);
      ctx.out.note(`Next: \`everyauth service set <service-id> --provider ${added.id} --client-id <id> --client-secret -\`.`);
    });

  provider
    .command('rm')
    .description('remove a custom provider (built-in ones cannot be removed)')
    .argument('<id>', 'provider id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const deleted = await ctx.withBroker((b) => b.deleteProvider(id));
      if (!deleted) throw new NotFound('provider', id);
      if (ctx.out.json) return ctx.out.data({ id, deleted: true });
      ctx.out.line(`Removed provider "${id}".`);
    });
}

/** Reads a provider file; its id, when present, must be the one on the command line. The broker validates the rest. */
async function readDefinition(path: string, id: string): Promise<ProviderInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}.`,
      'provider add',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid JSON (${(error as Error).message}).`, 'provider add');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new UsageError(`${path} must hold a JSON object (a provider definition).`, 'provider add');
  const definition = json as Record<string, unknown>;
  if (definition.id !== undefined && definition.id !== id) {
    throw new UsageError(
      `${path} defines provider "${String(definition.id)}", but the command names "${id}"; make them the same.`,
      'provider add',
    );
  }
  return { ...definition, id } as ProviderInput;
}

function providerFields(p: Provider): [string, string | undefined][] {
  return [
    ['id', p.id],
    ['name', p.name],
    ['docs', p.docs],
    ['issuer', p.issuer],
    ['authorization', p.authorizationUrl],
    ['token', p.tokenUrl],
    ['refresh', p.refreshUrl],
    ['revocation', p.revocationUrl],
    ['userinfo', p.userinfoUrl],
    ['scopes', p.scopes.default.join(p.scopes.separator === ' ' ? ' ' : p.scopes.separator) || '(none by default)'],
    ['scope examples', p.scopes.examples.join(' ')],
    ['pkce', p.pkce ? 'yes' : 'no'],
    ['client auth', p.clientAuth],
    [
      'auth params',
      Object.entries(p.authorizationParams)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    ],
    ['refresh tokens', p.token.refreshToken ? (p.token.refreshTokenRotates ? 'yes, rotating' : 'yes') : 'no'],
    ['tokens expire', p.token.expires ? 'yes' : 'no'],
    [
      'variables',
      Object.entries(p.variables)
        .map(([k, v]) => `${k} (${v.description})`)
        .join('; '),
    ],
    ['notes', p.notes],
  ];
}
