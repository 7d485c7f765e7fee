/** Bulk loading for the PostgreSQL benches: rows streamed into `COPY … FROM STDIN` through psql. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** One CSV field: quoted only when it must be (RFC 4180); null becomes the empty unquoted field, which COPY reads as NULL. */
const field = (v: string | number | null) => {
  if (v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) || s === '' ? `"${s.replaceAll('"', '""')}"` : s;
};

/**
 * Streams `rows()` into `table (columns)` with one COPY. psql does the wire protocol's COPY
 * sub-protocol, which node-postgres leaves to an extra package; it must be on the PATH.
 */
export async function copyRows(
  url: string,
  table: string,
  columns: string[],
  rows: () => Iterable<(string | number | null)[]>,
): Promise<void> {
  const psql = spawn(
    'psql',
    [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `COPY ${table} (${columns.join(', ')}) FROM STDIN WITH (FORMAT csv)`],
    {
      stdio: ['pipe', 'ignore', 'inherit'],
    },
  );
  const exited = once(psql, 'exit');
  let chunk = '';
  for (const row of rows()) {
    chunk += row.map(field).join(',') + '\n';
    if (chunk.length > 1 << 20) {
      if (!psql.stdin.write(chunk)) await once(psql.stdin, 'drain');
      chunk = '';
    }
  }
  psql.stdin.end(chunk);
  const [code] = await exited;
  if (code !== 0) throw new Error(`psql COPY into ${table} exited ${code}`);
}
