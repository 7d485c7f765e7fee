import { Option, type Command } from 'commander';
import {
  NotFound,
  type Broker,
  type FreshIdentity,
  type IdentityFilter,
  type IdentitySelector,
  type IdentitySummary,
  type PutIdentity,
} from '@everyauth/core';
import { collectPair, pairsOf, positiveInt } from '../args.js';
import { contextOf, type CliIo, type Context } from '../context.js';
import { UsageError, withHint } from '../errors.js';
import { pairs, relativeTime } from '../output.js';

export interface SelectOptions {
  userId?: string;
  tenantId?: string;
  tag?: string[];
}

interface ListOptions extends SelectOptions {
  status?: IdentityFilter['status'];
  limit: number;
  next?: string;
  all?: boolean;
}

/** The selector flags shared by get, refresh and rm. */
export function withSelector(command: Command): Command {
  return command
    .argument('<service>', 'service id')
    .argument('[identity]', 'identity id (idn_…) or user id')
    .option('--user-id <id>', "your application's user id")
    .option('--tenant-id <id>', "your application's tenant id")
    .option('--tag <key=value>', 'tag that must match (repeatable)', collectPair);
}

/** Registers `identity` and its core subcommands; returns it, for the lifecycle ones (identity-lifecycle.ts). */
export function registerIdentity(program: Command, io: CliIo): Command {
  const identity = program.command('identity').description("identities: users' grants on a service (tokens are never listed)");

  identity
    .command('ls')
    .description('list identities of a service, optionally filtered')
    .argument('[service]', 'service id (all services when omitted)')
    .option('--user-id <id>', 'only this user')
    .option('--tenant-id <id>', 'only this tenant')
    .option('--tag <key=value>', 'only identities with this tag (repeatable)', collectPair)
    .addOption(new Option('--status <status>', 'only identities in this status').choices(['active', 'needs_reauth', 'dead', 'revoked']))
    .option('--limit <n>', 'identities per page (1–1000)', positiveInt, 100)
    .option('--next <cursor>', 'the cursor a previous page printed')
    .option('--all', 'every page, not just the first')
    .action(async (service: string | undefined, options: ListOptions, command: Command) => {
      const ctx = contextOf(io, command);
      const filter: IdentityFilter = {
        userId: options.userId,
        tenantId: options.tenantId,
        tags: pairsOf(options.tag, '--tag'),
        status: options.status,
      };
      const { items, next } = await ctx.withBroker(async (b) => {
        if (service !== undefined) await b.getService(service); // a typo in the service is an error, not an empty list
        const all: IdentitySummary[] = [];
        let cursor = options.next;
        do {
          const page = await b.listIdentities(service, filter, { count: options.limit, next: cursor });
          all.push(...page.items);
          cursor = page.next;
        } while (options.all && cursor !== undefined);
        return { items: all, next: cursor };
      });
      ctx.out.list(
        items,
        [
          { header: 'id', value: (i) => i.id },
          ...(service === undefined ? [{ header: 'service', value: (i: IdentitySummary) => i.serviceId }] : []),
          { header: 'user', value: (i) => i.userId },
          { header: 'tenant', value: (i) => i.tenantId },
          { header: 'status', value: (i) => i.status, style: (text, i) => statusText(ctx, i.status, text) },
          { header: 'account', value: (i) => accountOf(i) },
          { header: 'expires', value: (i) => relativeTime(i.expiresAt) },
          { header: 'tags', value: (i) => pairs(i.tags) },
        ],
        { empty: 'No identities match.', jsonValue: next === undefined ? { items } : { items, next } },
      );
      if (!ctx.out.json && next !== undefined) ctx.out.note(`More identities: add --next ${next} (or --all).`);
    });

  withSelector(identity.command('get'))
    .description('show one identity; --show-token prints a fresh access token (refreshing it first if needed)')
    .option('--show-token', 'print the access token')
    .action(async (service: string, id: string | undefined, options: SelectOptions & { showToken?: boolean }, command: Command) => {
      const ctx = contextOf(io, command);
      const selector = selectorOf(id, options, 'identity get');
      await ctx.withBroker(async (b) => {
        const summary = await findOrFail(b, service, selector);
        if (!options.showToken) return showSummary(ctx, summary);
        const fresh = await b.getIdentity(service, summary.id);
        if (!fresh) throw new NotFound('identity', summary.id);
        showFresh(ctx, summary, fresh);
      });
    });

  withSelector(identity.command('refresh'))
    .description('refresh the access token now, at the provider')
    .option('--show-token', 'print the new access token')
    .action(async (service: string, id: string | undefined, options: SelectOptions & { showToken?: boolean }, command: Command) => {
      const ctx = contextOf(io, command);
      const selector = selectorOf(id, options, 'identity refresh');
      await ctx.withBroker(async (b) => {
        const summary = await findOrFail(b, service, selector);
        const fresh = await b.getIdentity(service, summary.id, { force: true });
        if (!fresh) throw new NotFound('identity', summary.id);
        if (options.showToken || ctx.out.json) return showFresh(ctx, summary, fresh, options.showToken === true);
        ctx.out.line(
          `Refreshed ${fresh.identityId} (user ${fresh.userId}); the access token expires ${fresh.expiresAt ? `at ${fresh.expiresAt}` : 'never'}.`,
        );
      });
    });

  identity
    .command('add')
    .description("store a credential the user gave you (API key, Basic, service account), after the provider's test request accepts it")
    .argument('<service>', 'service id')
    .requiredOption('--user-id <id>', "your application's user id")
    .option('--tenant-id <id>', "your application's tenant id")
    .option('--tag <key=value>', 'tag to store (repeatable)', collectPair)
    .option('--api-key <value>', 'the provider\'s one secret field; "-" reads it from standard input (keeps it out of shell history)')
    .option('--field <name=value>', "a field of the provider's form (repeatable); see `provider get`", collectPair)
    .action(async (service: string, options: SelectOptions & { apiKey?: string; field?: string[] }, command: Command) => {
      const ctx = contextOf(io, command);
      const fields = pairsOf(options.field, '--field') ?? {};
      const summary = await ctx.withBroker(async (b) => {
        if (options.apiKey !== undefined) {
          const provider = await b.getProvider((await b.getService(service)).providerId);
          const secret = provider.fields.filter((f) => f.secret);
          if (secret.length !== 1) {
            throw new UsageError(
              `--api-key fills the provider's one secret field, but "${provider.id}" has ${secret.length} (${provider.fields.map((f) => f.name).join(', ') || 'no form'}): use --field.`,
              'identity add',
            );
          }
          fields[secret[0]!.name] = options.apiKey === '-' ? (await ctx.readStdin(secret[0]!.label)).trim() : options.apiKey;
        }
        const { userId, tenantId } = options;
        return b.putIdentity({ serviceId: service, userId: userId!, tenantId, tags: pairsOf(options.tag, '--tag'), fields });
      });
      showSummary(ctx, summary);
    });

  identity
    .command('import')
    .description(
      'move in an OAuth 2 grant the app already holds: reads {"accessToken","refreshToken","expiresAt","scope"} JSON from standard input',
    )
    .argument('<service>', 'service id')
    .requiredOption('--user-id <id>', "your application's user id")
    .option('--tenant-id <id>', "your application's tenant id")
    .option('--tag <key=value>', 'tag to store (repeatable)', collectPair)
    .action(async (service: string, options: SelectOptions, command: Command) => {
      const ctx = contextOf(io, command);
      const text = await ctx.readStdin('the tokens as JSON');
      let tokens: unknown;
      try {
        tokens = JSON.parse(text);
      } catch {
        throw new UsageError(
          'Standard input must be a JSON object: {"accessToken": …, "refreshToken": …, "expiresAt": …}.',
          'identity import',
        );
      }
      const summary = await ctx.withBroker((b) =>
        b.putIdentity({
          serviceId: service,
          userId: options.userId!,
          tenantId: options.tenantId,
          tags: pairsOf(options.tag, '--tag'),
          tokens: tokens as PutIdentity['tokens'],
        }),
      );
      showSummary(ctx, summary);
    });

  withSelector(identity.command('rm'))
    .description('delete an identity (or, with --all, every identity matching the filter)')
    .option('--revoke', 'also revoke the grant at the provider (RFC 7009)')
    .option('--all', 'delete every matching identity; without a filter, every identity of the service')
    .action(
      async (service: string, id: string | undefined, options: SelectOptions & { revoke?: boolean; all?: boolean }, command: Command) => {
        const ctx = contextOf(io, command);
        if (options.all) {
          if (id !== undefined) throw new UsageError('--all deletes by filter; do not name an identity as well.', 'identity rm');
          const filter = filterOf(options);
          const count = await ctx.withBroker((b) =>
            b.deleteIdentities(service, isEmpty(filter) ? null : filter, { revoke: options.revoke }),
          );
          if (ctx.out.json) return ctx.out.data({ deleted: count });
          return ctx.out.line(
            `Deleted ${count} identit${count === 1 ? 'y' : 'ies'} of service "${service}"${options.revoke ? ', revoked at the provider' : ''}.`,
          );
        }
        const selector = selectorOf(id, options, 'identity rm');
        const deleted = await ctx.withBroker(async (b) => {
          const summary = await findOrFail(b, service, selector);
          if (!(await b.deleteIdentity(summary.id, { revoke: options.revoke }))) throw new NotFound('identity', summary.id);
          return summary;
        });
        if (ctx.out.json) return ctx.out.data({ id: deleted.id, deleted: true, revoked: options.revoke === true });
        ctx.out.line(
          `Deleted identity ${deleted.id} (user ${deleted.userId})${options.revoke ? ' and revoked its grant at the provider' : ''}.`,
        );
      },
    );

  return identity;
}

function filterOf(options: SelectOptions): IdentityFilter {
  const filter: IdentityFilter = {};
  if (options.userId !== undefined) filter.userId = options.userId;
  if (options.tenantId !== undefined) filter.tenantId = options.tenantId;
  const tags = pairsOf(options.tag, '--tag');
  if (tags !== undefined) filter.tags = tags;
  return filter;
}

const isEmpty = (filter: IdentityFilter) => Object.keys(filter).length === 0;

export function selectorOf(id: string | undefined, options: SelectOptions, command: string): IdentitySelector {
  const filter = filterOf(options);
  if (id !== undefined && !isEmpty(filter))
    throw new UsageError('Name the identity either by id or with --user-id/--tenant-id/--tag, not both.', command);
  if (id !== undefined) return id;
  if (isEmpty(filter))
    throw new UsageError(
      'Name the identity: an identity id (idn_…), or --user-id (with --tenant-id or --tag when a user has several).',
      command,
    );
  return filter;
}

export async function findOrFail(broker: Broker, service: string, selector: IdentitySelector): Promise<IdentitySummary> {
  // An unknown service is its own error, so a typo in it is not reported as a missing identity.
  await broker.getService(service);
  const found = await broker.findIdentity(service, selector);
  if (!found) {
    throw withHint(
      new NotFound('identity', typeof selector === 'string' ? selector : describeFilter(selector)),
      `List the identities of this service with \`everyauth identity ls ${service}\`.`,
    );
  }
  return found;
}

function describeFilter(filter: IdentityFilter): string {
  return [filter.userId && `user ${filter.userId}`, filter.tenantId && `tenant ${filter.tenantId}`, filter.tags && pairs(filter.tags)]
    .filter(Boolean)
    .join(', ');
}

function accountOf(i: IdentitySummary): string | undefined {
  return i.profile.email ?? i.profile.name ?? i.profile.id;
}

function statusText(ctx: Context, status: IdentitySummary['status'], text: string = status): string {
  if (status === 'active') return ctx.out.color.green(text);
  return status === 'needs_reauth' ? ctx.out.color.yellow(text) : ctx.out.color.red(text);
}

function summaryFields(ctx: Context, i: IdentitySummary): [string, string | undefined][] {
  return [
    ['id', i.id],
    ['service', i.serviceId],
    ['user', i.userId],
    ['tenant', i.tenantId],
    ['status', statusText(ctx, i.status)],
    [
      'account',
      [i.profile.name, i.profile.email && `<${i.profile.email}>`, i.profile.id && `(id ${i.profile.id})`].filter(Boolean).join(' '),
    ],
    ['tags', pairs(i.tags)],
    ['scope', i.scope],
    ['expires', i.expiresAt && `${i.expiresAt} (${relativeTime(i.expiresAt)})`],
    ['last refresh', i.lastRefreshAt],
    ['failing since', i.failingSince],
    ['last check', i.lastCheckedAt && `${i.lastCheckedAt} (${i.healthy ? 'healthy' : 'unhealthy'})`],
    ['metadata', Object.keys(i.metadata ?? {}).length > 0 ? JSON.stringify(i.metadata) : undefined],
    ['created', i.createdAt],
    ['updated', i.updatedAt],
  ];
}

export function showSummary(ctx: Context, i: IdentitySummary): void {
  ctx.out.record(i, summaryFields(ctx, i));
  if (!ctx.out.json && (i.status === 'needs_reauth' || i.status === 'dead'))
    ctx.out.note(
      `The grant is no longer valid: the user must authorize again (\`everyauth identity reconnect ${i.serviceId} ${i.id}\` makes a link).`,
    );
}

function showFresh(ctx: Context, summary: IdentitySummary, fresh: FreshIdentity, withToken = true): void {
  if (ctx.out.json) {
    const { accessToken: _hidden, credential: _secret, ...rest } = fresh;
    return ctx.out.data(withToken ? fresh : rest);
  }
  ctx.out.record(fresh, [
    ...summaryFields(ctx, summary).map(([k, v]): [string, string | undefined] => (k === 'expires' ? [k, fresh.expiresAt] : [k, v])),
    ['kind', fresh.credential.type],
    ...(withToken ? credentialFields(fresh) : []),
  ]);
}

/** What `--show-token` prints: the access token, or the headers and query a non-token credential adds. */
function credentialFields(fresh: FreshIdentity): [string, string | undefined][] {
  const c = fresh.credential;
  if (c.type === 'api_key' || c.type === 'basic') {
    return [
      ...Object.entries(c.headers).map(([k, v]): [string, string] => [`header ${k}`, v]),
      ...Object.entries(c.query).map(([k, v]): [string, string] => [`query ${k}`, v]),
    ];
  }
  if (c.type === 'oauth1') return [['oauth token', c.token]];
  return [['access token', fresh.accessToken]];
}
