import pc from 'picocolors';

export type Format = 'table' | 'json';

/** Colour functions; identity functions when colour is off. */
export type Colors = ReturnType<typeof pc.createColors>;

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorsFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): Colors {
  const enabled = stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
  return pc.createColors(enabled);
}

export interface Column<T> {
  header: string;
  /** Plain text; control characters are blanked out. */
  value: (row: T) => string | undefined;
  /** Colour for the cell, applied after padding so escape codes do not count toward the width. */
  style?: (text: string, row: T) => string;
}

/**
 * Where a command's results go: stdout for results (tables, or JSON for scripts), stderr for
 * notes, warnings and progress, so `-o json` output stays parseable.
 */
export class Output {
  readonly color: Colors;
  readonly errColor: Colors;

  constructor(
    readonly format: Format,
    readonly stdout: NodeJS.WriteStream,
    readonly stderr: NodeJS.WriteStream,
    env: NodeJS.ProcessEnv,
  ) {
    this.color = colorsFor(stdout, env);
    this.errColor = colorsFor(stderr, env);
  }

  get json(): boolean {
    return this.format === 'json';
  }

  /** A result line (table mode only; JSON mode prints the data instead). */
  line(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  /** A note for the human at the terminal: what happened, what to do next. Goes to stderr. */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`${this.errColor.yellow('warning:')} ${text}\n`);
  }

  data(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A list: a table, or the JSON array (or `jsonValue` when the JSON shape differs, e.g. a page). */
  list<T>(rows: T[], columns: Column<T>[], options: { empty?: string; jsonValue?: unknown } = {}): void {
    if (this.json) return this.data(options.jsonValue ?? rows);
    if (rows.length === 0) {
      this.note(options.empty ?? 'Nothing to show.');
      return;
    }
    this.line(renderTable(rows, columns, this.color));
  }

  /** One object: aligned "key  value" lines, or its JSON. */
  record(value: unknown, fields: [string, string | undefined][]): void {
    if (this.json) return this.data(value);
    const shown = fields.filter(([, v]) => v !== undefined && v !== '');
    const width = Math.max(...shown.map(([k]) => k.length));
    for (const [key, v] of shown) this.line(`${this.color.dim(key.padEnd(width))}  ${v}`);
  }
}

/** Column widths from the visible text; the header is bold and the cells are padded. */
export function renderTable<T>(rows: T[], columns: Column<T>[], color: Colors): string {
  const cells = rows.map((row) => columns.map((c) => clean(c.value(row) ?? '')));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const last = columns.length - 1;
  const line = (values: string[], row?: T) =>
    values
      .map((v, i) => {
        const padded = i === last ? v : v.padEnd(widths[i]!);
        const style = columns[i]!.style;
        return row !== undefined && style && v !== '' ? style(padded, row) : padded;
      })
      .join('  ')
      .trimEnd();
  const header = color.bold(line(columns.map((c) => c.header.toUpperCase())));
  return [header, ...cells.map((values, r) => line(values, rows[r]))].join('\n');
}

/** Keeps a cell on one line: control characters from stored values could break or spoof the table. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/** `k=v, k2=v2` for tags and parameters. */
export function pairs(record: Record<string, string> | undefined): string {
  return Object.entries(record ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** A short "in 5 min" / "2 h ago" next to an ISO time, for tables. */
export function relativeTime(iso: string | undefined, now = Date.now()): string | undefined {
  if (!iso) return undefined;
  const diff = Date.parse(iso) - now;
  const abs = Math.abs(diff);
  const [value, unit] =
    abs < 60_000
      ? [Math.round(abs / 1000), 's']
      : abs < 3_600_000
        ? [Math.round(abs / 60_000), 'min']
        : abs < 86_400_000
          ? [Math.round(abs / 3_600_000), 'h']
          : [Math.round(abs / 86_400_000), 'd'];
  return diff >= 0 ? `in ${value} ${unit}` : `${value} ${unit} ago`;
}
