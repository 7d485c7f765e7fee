/**
 * Runs the built `everyauth` binary as a user would: `node packages/cli/dist/bin.js …` in a
 * project folder of its own, with a clean environment (no EVERYAUTH_* from the developer's shell).
 * Build first with `npx tsc -b packages/cli` (`npm test` does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the CLI first with \`npx tsc -b packages/cli\`.`);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Written to standard input, which is then closed. */
  input?: string;
}

/** A temporary project folder; `run` executes the CLI there. */
export interface Project {
  dir: string;
  run(args: string[], options?: RunOptions): Promise<RunResult>;
  /** `run`, then JSON.parse of stdout; fails the test with stderr when the exit code is not 0. */
  json<T = any>(args: string[], options?: RunOptions): Promise<T>;
  spawn(args: string[], options?: RunOptions): ChildProcess;
  remove(): void;
}

export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('EVERYAUTH_') && k !== 'NO_COLOR' && k !== 'FORCE_COLOR') env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function newProject(): Project {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-cli-'));
  const spawnCli = (args: string[], options: RunOptions = {}) =>
    spawn(process.execPath, [BIN, ...args], { cwd: dir, env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  const run = (args: string[], options: RunOptions = {}) =>
    new Promise<RunResult>((resolve, reject) => {
      const child = spawnCli(args, options);
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      child.stdin!.end(options.input ?? '');
    });
  return {
    dir,
    run,
    async json(args, options) {
      const r = await run([...args, '-o', 'json'], options);
      if (r.code !== 0) throw new Error(`everyauth ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
      return JSON.parse(r.stdout);
    },
    spawn: spawnCli,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
