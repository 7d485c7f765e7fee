import type { Command } from 'commander';
import {
  addKeyToRing,
  ConfigurationError,
  countNotUnderCurrentKey,
  countSealedByKey,
  MASTER_KEY_ENV,
  parseKeyMaterial,
  readKeyRing,
  removeKeyFromRing,
  resealStore,
  SEALED_COLUMNS,
  Vault,
  writeKeyRing,
  type KeyRing,
  type ResolvedEmbedded,
  type SealedColumn,
} from '@everyauth/core';
import { nonNegativeInt, positiveInt } from '../args.js';
import { contextOf, type CliIo, type Context } from '../context.js';
import { shown } from '../fsutil.js';
import { startProgress } from '../progress.js';

interface RotateOptions {
  resume?: boolean;
  batchSize: number;
  pauseMs: number;
}

/** The key ring in use and where it lives: the key file, or EVERYAUTH_MASTER_KEY (which the CLI cannot edit). */
async function keyRingOf(ctx: Context, config: ResolvedEmbedded): Promise<{ ring: KeyRing; fromEnv: boolean; source: string }> {
  const env = ctx.env[MASTER_KEY_ENV];
  if (env !== undefined && env.trim() !== '') return { ring: parseKeyMaterial(env, MASTER_KEY_ENV), fromEnv: true, source: MASTER_KEY_ENV };
  return { ring: await readKeyRing(config.keyFile), fromEnv: false, source: shown(config.keyFile) };
}

export function registerKeys(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('the master key ring: rotate, inspect, retire old keys');

  keys
    .command('rotate')
    .description('add a new master key and re-encrypt every secret and token with it; safe to interrupt and run again')
    .option('--resume', 'only finish an interrupted rotation; never add a key')
    .option('--batch-size <n>', 'values re-encrypted per transaction', positiveInt, 500)
    .option('--pause-ms <ms>', 'pause between batches, to spare a busy database', nonNegativeInt, 0)
    .addHelpText(
      'after',
      '\nThe new key is written to the key file first (old keys stay in it for decryption), then values are\n' +
        're-encrypted batch by batch. If interrupted, run `everyauth keys rotate` again: it continues.\n' +
        'Restart processes that use the key file afterwards, so they seal new values with the new key.',
    )
    .action(async (options: RotateOptions, command: Command) => {
      const ctx = contextOf(io, command);
      await ctx.withEmbedded('keys rotate', async ({ config, store }) => {
        const loaded = await keyRingOf(ctx, config);
        const { fromEnv, source } = loaded;
        let ring = loaded.ring;
        let vault = Vault.fromKeyRing(ring, source);
        const columns = await sealedColumns();
        const pending = await countNotUnderCurrentKey(store, vault, columns);
        const resuming = pending > 0;
        if (!resuming && options.resume) {
          if (ctx.out.json) return ctx.out.data({ currentKey: ring.current, resealed: 0, remaining: 0 });
          return ctx.out.line(`Nothing to resume: every value is already under the current key ${ring.current}.`);
        }
        if (resuming) {
          ctx.out.note(`Continuing the rotation to key ${ring.current}: ${pending} value(s) are still under older keys.`);
        } else {
          if (fromEnv) {
            throw new ConfigurationError(
              `The key ring comes from ${MASTER_KEY_ENV}, which the CLI cannot change. Add a new key to that ring as "current" (keeping the old one), ` +
                'then run `everyauth keys rotate --resume` to re-encrypt.',
            );
          }
          ring = addKeyToRing(ring);
          await writeKeyRing(config.keyFile, ring, { overwrite: true });
          vault = Vault.fromKeyRing(ring, source);
          ctx.out.note(`Added key ${ring.current} to ${source}; older keys stay in it for decryption.`);
        }
        const progress = startProgress(ctx, 'Re-encrypting', { lines: true });
        let result;
        try {
          result = await resealStore(store, vault, {
            columns,
            batchSize: options.batchSize,
            pauseMs: options.pauseMs,
            onProgress: (p) => progress.update(p.done, p.total),
          });
        } finally {
          progress.stop();
        }
        const remaining = result.changed > 0 ? await countNotUnderCurrentKey(store, vault, columns) : 0;
        if (ctx.out.json)
          return ctx.out.data({ currentKey: ring.current, resealed: result.resealed, changedMeanwhile: result.changed, remaining });
        ctx.out.line(`Re-encrypted ${result.resealed} value(s) under key ${ring.current}.`);
        if (remaining > 0) {
          ctx.out.warn(
            `${remaining} value(s) were written meanwhile under an older key by a process still using the old key ring; restart it, then run \`everyauth keys rotate\` again.`,
          );
        }
        const old = ring.keys.filter((k) => k.id !== ring.current).map((k) => k.id);
        ctx.out.note('Restart processes that use this key ring so they seal new values with the new key.');
        if (old.length > 0 && remaining === 0)
          ctx.out.note(
            `Older keys (${old.join(', ')}) are no longer needed by this store; remove them with \`everyauth keys retire <key-id>\`.`,
          );
      });
    });

  keys
    .command('status')
    .description('show the keys of the ring and how many stored values each one seals')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      await ctx.withEmbedded('keys status', async ({ config, store }) => {
        const { ring, source } = await keyRingOf(ctx, config);
        const usage = await countSealedByKey(
          store,
          ring.keys.map((k) => k.id),
          await sealedColumns(),
        );
        const pending = usage.total - (usage.byKey[ring.current] ?? 0);
        const rows = ring.keys.map((k) => ({
          id: k.id,
          current: k.id === ring.current,
          createdAt: k.createdAt,
          values: usage.byKey[k.id] ?? 0,
        }));
        ctx.out.list(
          rows,
          [
            { header: 'key', value: (r) => r.id },
            { header: 'current', value: (r) => (r.current ? 'yes' : ''), style: (text) => ctx.out.color.green(text) },
            { header: 'created', value: (r) => r.createdAt },
            { header: 'values', value: (r) => String(r.values) },
          ],
          { jsonValue: { source, current: ring.current, keys: rows, unknownKeyValues: usage.other, pending, total: usage.total } },
        );
        if (ctx.out.json) return;
        ctx.out.note(`Key ring: ${source}. ${usage.total} sealed value(s) in the store.`);
        if (usage.other > 0)
          ctx.out.warn(
            `${usage.other} value(s) are sealed under keys missing from this ring and cannot be decrypted; add those keys back.`,
          );
        if (pending - usage.other > 0)
          ctx.out.note(`${pending - usage.other} value(s) are not yet under the current key: run \`everyauth keys rotate\` to finish.`);
      });
    });

  keys
    .command('retire')
    .description('remove an old key from the ring, once no stored value uses it')
    .argument('<key-id>', 'id of the key to remove')
    .action(async (keyId: string, _options: unknown, command: Command) => {
      const ctx = contextOf(io, command);
      await ctx.withEmbedded('keys retire', async ({ config, store }) => {
        const { ring, fromEnv, source } = await keyRingOf(ctx, config);
        const next = removeKeyFromRing(ring, keyId); // refuses the current key and unknown ids
        const inUse = (await countSealedByKey(store, [keyId], await sealedColumns())).byKey[keyId] ?? 0;
        if (inUse > 0)
          throw new ConfigurationError(
            `Key ${keyId} still seals ${inUse} value(s) in this store; run \`everyauth keys rotate\` to re-encrypt them first.`,
          );
        if (fromEnv)
          throw new ConfigurationError(
            `The key ring comes from ${MASTER_KEY_ENV}, which the CLI cannot change: remove key ${keyId} from it there. No value in this store uses it.`,
          );
        await writeKeyRing(config.keyFile, next, { overwrite: true });
        if (ctx.out.json) return ctx.out.data({ retired: keyId, current: next.current, keys: next.keys.map((k) => k.id) });
        ctx.out.line(`Removed key ${keyId} from ${source}.`);
        ctx.out.note('Other stores or backups sealed under that key can no longer be decrypted with this key file.');
      });
    });
}

/** Core's sealed columns and the server's (webhook secrets), which share the store and the key ring. */
async function sealedColumns(): Promise<SealedColumn[]> {
  // The server package loads only here: it brings Fastify along.
  const { SERVER_SEALED_COLUMNS } = await import('@everyauth/server');
  return [...SEALED_COLUMNS, ...SERVER_SEALED_COLUMNS];
}
