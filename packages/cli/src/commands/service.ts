import { Option, type Command } from 'commander';
import { NotFound, resolveProviderUrls, type Provider, type Service, type ServiceInput } from '@everyauth/core';
import { collectPair, pairsOf, splitScopes } from '../args.js';
import { contextOf, type CliIo, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { pairs } from '../output.js';

interface SetOptions {
  provider?: string;
  clientId?: string;
  clientSecret?: string;
  clientSecretStdin?: boolean;
  removeClientSecret?: boolean;
  scope?: string[];
  param?: string[];
  variable?: string[];
  /** The first spelling of --variable, still accepted. */
  var?: string[];
  apiBaseUrl?: string[];
}

export function registerService(program: Command, io: CliIo): void {
  const service = program.command('service').description('services: configured uses of a provider (client id, secret, scopes)');

  service
    .command('ls')
    .description('list services')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const services = await ctx.withBroker((b) => b.listServices());
      ctx.out.list(
        services,
        [
          { header: 'id', value: (s) => s.id },
          { header: 'provider', value: (s) => s.providerId },
          { header: 'client id', value: (s) => s.clientId },
          { header: 'secret', value: (s) => (s.hasClientSecret ? 'set' : 'none') },
          { header: 'scopes', value: (s) => s.scopes.join(' ') || '(provider defaults)' },
        ],
        {
          empty: 'No services yet. Create one with `everyauth service set <id> --provider <provider> --client-id <id> --client-secret -`.',
        },
      );
    });

  service
    .command('get')
    .description('show a service and the redirect URL to register at the provider')
    .argument('<id>', 'service id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const { s, provider } = await ctx.withBroker(async (b) => {
        const s = await b.getService(id);
        return { s, provider: await b.getProvider(s.providerId) };
      });
      showService(ctx, s, provider);
    });

  service
    .command('set')
    .description('create or update a service (only the given fields change)')
    .argument('<id>', 'service id, e.g. google or google-work')
    .option('--provider <id>', 'provider id (default: the service id)')
    .option('--client-id <id>', 'client id the provider issued')
    .option('--client-secret <secret>', 'client secret; "-" reads it from standard input, keeping it out of shell history')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option('--remove-client-secret', 'remove the stored client secret (public clients)')
    .option('--scope <scopes...>', "scopes to request (replaces the list; default: the provider's)")
    .option('--param <key=value>', 'extra authorization parameter (repeatable; replaces the set)', collectPair)
    .option(
      '--variable <name=value>',
      'a provider variable such as subdomain or baseUrl, or an endpoint override such as tokenUrl=https://… (repeatable; replaces the set)',
      collectPair,
    )
    // `variables` in the REST API and the catalog, `--variable` here (one per value, as --scope and --param); --var was its first name.
    .addOption(new Option('--var <name=value>').argParser(collectPair).hideHelp())
    .option(
      '--api-base-url <urls...>',
      "the only URLs broker.fetch and /v1/proxy send this service's credentials under (replaces the list)",
    )
    .action(async (id: string, options: SetOptions, command: Command) => {
      const ctx = contextOf(io, command);
      const input: ServiceInput = {
        id,
        providerId: options.provider,
        clientId: options.clientId,
        clientSecret: await clientSecretOf(ctx, options),
        scopes: splitScopes(options.scope),
        params: pairsOf(options.param, '--param'),
        variables: pairsOf(
          options.variable || options.var ? [...(options.var ?? []), ...(options.variable ?? [])] : undefined,
          '--variable',
        ),
        apiBaseUrls: options.apiBaseUrl,
      };
      const { saved, created } = await ctx.withBroker(async (b) => {
        const existed = (await b.listServices()).some((s) => s.id === id);
        return { saved: await b.putService(input), created: !existed };
      });
      if (ctx.out.json) return ctx.out.data(saved);
      ctx.out.line(`${created ? 'Created' : 'Updated'} service "${saved.id}" (provider ${saved.providerId}).`);
      ctx.out.line(`Register this redirect URL at the provider: ${ctx.out.color.bold(saved.redirectUrl)}`);
      if (!saved.hasClientSecret)
        ctx.out.note(
          'No client secret is set; add one with `everyauth service set ' +
            saved.id +
            ' --client-secret -` unless this is a public client.',
        );
    });

  service
    .command('rm')
    .description('delete a service with its identities and pending authorizations')
    .argument('<id>', 'service id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      const deleted = await ctx.withBroker((b) => b.deleteService(id));
      if (!deleted) throw new NotFound('service', id);
      if (ctx.out.json) return ctx.out.data({ id, deleted: true });
      ctx.out.line(`Deleted service "${id}" and its identities.`);
    });
}

async function clientSecretOf(ctx: Context, options: SetOptions): Promise<string | null | undefined> {
  const given = [options.clientSecret !== undefined, options.clientSecretStdin === true, options.removeClientSecret === true].filter(
    Boolean,
  ).length;
  if (given > 1) throw new UsageError('Give only one of --client-secret, --client-secret-stdin and --remove-client-secret.', 'service set');
  if (options.removeClientSecret) return null;
  if (options.clientSecretStdin || options.clientSecret === '-') {
    const secret = await ctx.readStdin('the client secret');
    if (secret.trim() === '')
      throw new UsageError(
        'Standard input was empty: pipe the client secret in, e.g. `pbpaste | everyauth service set <id> --client-secret -`.',
        'service set',
      );
    return secret.trim();
  }
  if (options.clientSecret !== undefined) {
    if (options.clientSecret === '')
      throw new UsageError('--client-secret is empty; to remove the secret use --remove-client-secret.', 'service set');
    ctx.out.warn('a secret on the command line lands in your shell history; prefer `--client-secret -` and standard input.');
  }
  return options.clientSecret;
}

/** Where this service's requests go: the provider's endpoints with the service's variables and overrides applied. */
function endpointsOf(s: Service, provider: Provider): Record<string, string> {
  const resolved = resolveProviderUrls(provider, s.variables);
  const urls: Record<string, string | undefined> = {
    issuer: resolved.issuer,
    authorizationUrl: resolved.authorizationUrl,
    tokenUrl: resolved.tokenUrl,
    refreshUrl: resolved.refreshUrl,
    revocationUrl: resolved.revocationUrl,
    registrationUrl: resolved.registrationUrl,
    userinfoUrl: resolved.userinfoUrl,
    profileUrl: resolved.profile?.url,
  };
  return Object.fromEntries(Object.entries(urls).filter((e): e is [string, string] => e[1] !== undefined));
}

function showService(ctx: Context, s: Service, provider: Provider): void {
  const endpoints = endpointsOf(s, provider);
  if (ctx.out.json) return ctx.out.data({ ...s, endpoints });
  const overridden = (field: string) => (field in s.variables ? ` ${ctx.out.color.cyan('(overridden)')}` : '');
  ctx.out.record(s, [
    ['id', s.id],
    ['provider', s.providerId],
    ['client id', s.clientId],
    ['client secret', s.hasClientSecret ? 'set (hidden)' : 'none'],
    ['scopes', s.scopes.join(' ') || '(provider defaults)'],
    ['params', pairs(s.params)],
    ['variables', pairs(s.variables)],
    ...Object.entries(endpoints).map(([field, url]): [string, string] => [field, `${url}${overridden(field)}`]),
    ['redirect URL', ctx.out.color.bold(s.redirectUrl)],
    ['API base URLs', s.apiBaseUrls?.join(' ') ?? "(the provider's)"],
    ['created', s.createdAt],
    ['updated', s.updatedAt],
  ]);
  ctx.out.note("Register the redirect URL in the provider's app settings.");
}
