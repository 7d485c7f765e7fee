import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { openBundle, readBundleContents, sealBundle, writeBundleContents, type BundleContents, type BundleCounts } from '@everyauth/core';
import { contextOf, type CliIo, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { shown, writeFileAtomic } from '../fsutil.js';
import { bundlePassphrase, PASSPHRASE_ENV } from '../passphrase.js';
import { startProgress } from '../progress.js';

export function registerBundle(program: Command, io: CliIo): void {
  program
    .command('export')
    .description('write an encrypted bundle of services, custom providers and identities (with their secrets and tokens)')
    .option('--out <file>', 'bundle file to write (default: standard output)')
    .option('--passphrase-file <file>', `file whose first line is the passphrase (or set ${PASSPHRASE_ENV})`)
    .option('--force', 'replace an existing --out file')
    .action(async (options: { out?: string; passphraseFile?: string; force?: boolean }, command: Command) => {
      const ctx = contextOf(io, command);
      const passphrase = await bundlePassphrase(ctx, options.passphraseFile, 'export');
      if (options.out === undefined && io.stdout.isTTY) {
        throw new UsageError('Refusing to print a bundle to the terminal: give --out <file>, or redirect standard output.', 'export');
      }
      const out = options.out === undefined ? undefined : resolve(options.out);
      if (out && !options.force && (await exists(out)))
        throw new UsageError(`${options.out} already exists; use --force to replace it.`, 'export');
      const contents = await ctx.withEmbedded('Export', async ({ store, vault }) => {
        const progress = startProgress(ctx, 'Exporting identities');
        try {
          return await readBundleContents(store, vault, { onProgress: (p) => progress.update(p.done, p.total) });
        } finally {
          progress.stop();
        }
      });
      const text = await sealBundle(contents, passphrase);
      if (out) await writeFileAtomic(out, text, 0o600);
      else io.stdout.write(text);
      const counts = countsOf(contents);
      const summary = `Exported ${describe(counts)}${out ? ` to ${shown(out)}` : ''}.`;
      if (out && ctx.out.json) ctx.out.data({ out, ...counts });
      else if (out) ctx.out.line(summary);
      else ctx.out.note(summary);
      ctx.out.note('The bundle holds client secrets and tokens: keep it and its passphrase apart, and delete it once imported.');
    });

  program
    .command('import')
    .description('import a bundle made by `everyauth export`; importing the same bundle again changes nothing')
    .argument('<file>', 'bundle file ("-" for standard input)')
    .option('--passphrase-file <file>', `file whose first line is the passphrase (or set ${PASSPHRASE_ENV})`)
    .option('--dry-run', 'decrypt and check the bundle, and say what it holds, without writing')
    .action(async (file: string, options: { passphraseFile?: string; dryRun?: boolean }, command: Command) => {
      const ctx = contextOf(io, command);
      const passphrase = await bundlePassphrase(ctx, options.passphraseFile, 'import');
      const text = file === '-' ? await ctx.readStdin('the bundle') : await readBundleFile(file);
      const contents = await openBundle(text, passphrase);
      if (options.dryRun) return report(ctx, countsOf(contents), 'holds', file);
      const counts = await ctx.withEmbedded('Import', async ({ store, vault }) => {
        const progress = startProgress(ctx, 'Importing identities');
        try {
          return await writeBundleContents(store, vault, contents, { onProgress: (p) => progress.update(p.done, p.total) });
        } finally {
          progress.stop();
        }
      });
      report(ctx, counts, 'imported', file);
    });
}

function report(ctx: Context, counts: BundleCounts, verb: 'holds' | 'imported', file: string): void {
  if (ctx.out.json) return ctx.out.data({ file, dryRun: verb === 'holds', ...counts });
  ctx.out.line(verb === 'holds' ? `The bundle holds ${describe(counts)}; nothing was written.` : `Imported ${describe(counts)}.`);
}

async function readBundleFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`Cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'error')}.`, 'import');
  }
}

function countsOf(contents: BundleContents): BundleCounts {
  return { providers: contents.providers.length, services: contents.services.length, identities: contents.identities.length };
}

function describe(c: BundleCounts): string {
  const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  return `${n(c.services, 'service', 'services')}, ${n(c.identities, 'identity', 'identities')} and ${n(c.providers, 'custom provider', 'custom providers')}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
