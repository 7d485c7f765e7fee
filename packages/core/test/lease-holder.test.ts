import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { leaseHolderGone, leaseOwnerName } from '../src/lease-holder.js';

/** A Node process that says it is ready and then waits to be killed. */
function holderProcess() {
  return spawn(process.execPath, ['-e', 'console.log("ready"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
}

describe('lease holders on this machine', () => {
  it('names this process: host, pid and a start time; this process is never gone', () => {
    const owner = leaseOwnerName();
    const [random, host, pid, start] = owner.split('.');
    expect(random).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(host).toBe(hostname().replace(/\./g, '_'));
    expect(Number(pid)).toBe(process.pid);
    expect(Number(start)).toBeGreaterThan(0);
    expect(leaseHolderGone(owner)).toBe(false);
    expect(leaseOwnerName()).not.toBe(owner);
  });

  it('a killed holder is gone; while it ran it was not', async () => {
    const child = holderProcess();
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const pid = child.pid!;
    // The child's owner name as it would write it: its host, pid and start time.
    const [random, host] = leaseOwnerName().split('.');
    const childOwner = [random, host, pid, startOf(pid)].join('.');
    expect(leaseHolderGone(childOwner)).toBe(false);
    child.kill('SIGKILL');
    await exited;
    expect(leaseHolderGone(childOwner)).toBe(true);
  });

  it('a reused process id (same pid, another start time) is gone', () => {
    const [random, host] = leaseOwnerName().split('.');
    const reused = [random, host, process.ppid, startOf(process.ppid) + 1].join('.');
    expect(leaseHolderGone(reused)).toBe(true);
  });

  it('an owner on another machine, or in an old format, is never called gone', () => {
    expect(leaseHolderGone(`abcdefghijklmnop.other_host.999999.1`)).toBe(false);
    expect(leaseHolderGone('abcdefghijklmnop')).toBe(false);
    expect(leaseHolderGone('')).toBe(false);
  });
});

/** What /proc says about a process's start, read independently of the module under test. */
function startOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}
