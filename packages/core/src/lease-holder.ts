import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomToken } from './ids.js';

/**
 * Who holds a refresh lease, written into the row's `lease_owner`: a random name, and the host,
 * process id and process start time, so another process on the same machine can tell whether the
 * holder still runs. A process id alone is not enough: the system reuses them, so the start time
 * must match too. Format: `<random>.<host>.<pid>.<start>`.
 */
export function leaseOwnerName(): string {
  return [randomToken().slice(0, 16), hostTag(), process.pid, startTimeOf(process.pid) ?? 0].join('.');
}

/**
 * Whether the process named in a lease owner is known to have ended: true only when it ran on this
 * machine and no process with its id and start time runs now. An owner from another machine, or
 * in another format, is never called gone (its lease ends by its expiry instead).
 */
export function leaseHolderGone(owner: string): boolean {
  const [, host, pidText, startText] = owner.split('.');
  const pid = Number(pidText);
  if (host !== hostTag() || !Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const start = startTimeOf(pid);
  // Where start times cannot be read (not Linux), a live process id is taken as the holder.
  return start !== undefined && Number(startText) !== 0 && start !== Number(startText);
}

/** The host name without dots (they separate the owner's parts). */
const hostTag = () => hostname().replace(/\./g, '_');

/**
 * The process's start time in clock ticks since boot: field 22 of /proc/<pid>/stat (proc(5)),
 * counted after the command name, which may itself hold spaces and parentheses.
 */
function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}
