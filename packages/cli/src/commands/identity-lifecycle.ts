/** `identity tag`, `identity check` and `identity reconnect`: an identity over time. */
import type { Command } from 'commander';
import { NotFound, type Metadata } from '@everyauth/core';
import { collect, collectPair, pairsOf, positiveInt } from '../args.js';
import { contextOf, type CliIo } from '../context.js';
import { UsageError } from '../errors.js';
import { findOrFail, selectorOf, showSummary, withSelector, type SelectOptions } from './identity.js';

interface TagOptions extends SelectOptions {
  set?: string[];
  unset?: string[];
  metadata?: string;
}

export function registerIdentityLifecycle(identity: Command, io: CliIo): void {
  withSelector(identity.command('tag'))
    .description("change an identity's tags (--set, --unset) and/or replace its metadata (--metadata JSON)")
    .option('--set <key=value>', 'set a tag (repeatable)', collectPair)
    .option('--unset <key>', 'remove a tag (repeatable)', collect)
    .option('--metadata <json>', 'replace the metadata with this JSON object ({} clears it; at most 4 KiB)')
    .action(async (service: string, id: string | undefined, options: TagOptions, command: Command) => {
      const ctx = contextOf(io, command);
      if (!options.set && !options.unset && options.metadata === undefined)
        throw new UsageError('Say what to change: --set key=value, --unset key or --metadata JSON.', 'identity tag');
      const metadata = options.metadata === undefined ? undefined : parseMetadata(options.metadata);
      const selector = selectorOf(id, options, 'identity tag');
      const updated = await ctx.withBroker(async (b) => {
        const found = await findOrFail(b, service, selector);
        const tags = options.set || options.unset ? { ...found.tags, ...pairsOf(options.set, '--set') } : undefined;
        for (const key of options.unset ?? []) delete tags![key];
        const done = await b.updateIdentity(found.id, { tags, metadata });
        if (!done) throw new NotFound('identity', found.id);
        return done;
      });
      showSummary(ctx, updated);
    });

  withSelector(identity.command('check'))
    .description("run the provider's test request with the identity's token and record whether it is healthy")
    .action(async (service: string, id: string | undefined, options: SelectOptions, command: Command) => {
      const ctx = contextOf(io, command);
      const selector = selectorOf(id, options, 'identity check');
      const result = await ctx.withBroker(async (b) => b.checkIdentity((await findOrFail(b, service, selector)).id));
      if (ctx.out.json) return ctx.out.data(result);
      const detail = [
        result.status !== undefined && `HTTP ${result.status}`,
        result.reason && result.reason !== `HTTP ${result.status}` && result.reason,
      ]
        .filter(Boolean)
        .join(', ');
      ctx.out.line(
        `${result.identityId}: ${result.healthy ? ctx.out.color.green('healthy') : ctx.out.color.red('unhealthy')}${detail ? ` (${detail})` : ''}.`,
      );
    });

  withSelector(identity.command('reconnect'))
    .description('print a link that re-authorizes this same identity (same id, tags and metadata); needs a server')
    .option('--finished-url <url>', 'where the user lands afterwards')
    .option('--allow-account-change', 'accept another account at the provider than the stored one')
    .option('--lifetime <minutes>', 'how long the link works (default 7 days)', positiveInt)
    .action(
      async (
        service: string,
        id: string | undefined,
        options: SelectOptions & { finishedUrl?: string; allowAccountChange?: boolean; lifetime?: number },
        command: Command,
      ) => {
        const ctx = contextOf(io, command);
        const selector = selectorOf(id, options, 'identity reconnect');
        const link = await ctx.withBroker(async (b) =>
          b.createReconnectLink((await findOrFail(b, service, selector)).id, {
            finishedUrl: options.finishedUrl,
            allowAccountChange: options.allowAccountChange,
            lifetimeMinutes: options.lifetime,
          }),
        );
        if (ctx.out.json) return ctx.out.data(link);
        ctx.out.line(link.url);
        ctx.out.note(`Send this link to the user; it works until ${link.expiresAt}.`);
      },
    );
}

function parseMetadata(text: string): Metadata {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`--metadata takes a JSON object, e.g. '{"crm":"123"}'; "${text.slice(0, 40)}" is not JSON.`, 'identity tag');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new UsageError('--metadata takes a JSON object ({} clears it).', 'identity tag');
  return value as Metadata;
}
