import { readFile } from 'node:fs/promises';
import type { Context } from './context.js';
import { UsageError } from './errors.js';

export const PASSPHRASE_ENV = 'EVERYAUTH_BUNDLE_PASSPHRASE' as const;

/** The bundle passphrase: the first line of --passphrase-file, or EVERYAUTH_BUNDLE_PASSPHRASE. Never a flag value (shell history). */
export async function bundlePassphrase(ctx: Context, file: string | undefined, command: string): Promise<string> {
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new UsageError(`Cannot read the passphrase file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`, command);
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line === '') throw new UsageError(`The passphrase file ${file} is empty.`, command);
    return line;
  }
  const fromEnv = ctx.settings[PASSPHRASE_ENV];
  if (fromEnv) return fromEnv;
  throw new UsageError(`A bundle is encrypted with a passphrase: give --passphrase-file <file>, or set ${PASSPHRASE_ENV}.`, command);
}
