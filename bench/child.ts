/** What the benches share for running part of themselves in a second process (a load generator). */
import { spawn } from 'node:child_process';

/**
 * Runs the bench file `script` again in a child Node process (with the source condition, as the
 * `bench:*` scripts run) with `args`, and resolves to the first JSON line it prints.
 */
export function jsonFromChild<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@everyauth/source', script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as T);
      else reject(new Error(`${script} ${args[0] ?? ''} exited ${code} without a result`));
    });
  });
}
