import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';

/**
 * Writes a file atomically with `mode` (0600 for anything that may hold a secret): a temporary file
 * in the same directory, synced, then renamed over the target, so a reader never sees half a file.
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let placed = false;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      if (process.platform !== 'win32') await handle.chmod(mode); // Independent of the umask.
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    placed = true;
  } finally {
    if (!placed) await unlink(temp).catch(() => undefined);
  }
}

/** A path as the user would type it from the working directory. */
export function shown(path: string): string {
  if (/^[a-z]+:\/\//i.test(path)) return path.replace(/\/\/[^@/]*@/, '//…@'); // never print database credentials
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}
