/**
 * Every command the README shows in a `sh` block runs as written. `npx everyauth …` lines run, in
 * order, in a temp folder laid out as an app that installed @everyauth/cli (its
 * node_modules/.bin/everyauth is this checkout's bin); `npm` lines are set-up lines, checked
 * against package.json (the script or workspace they name exists) rather than run, since they
 * install, build or serve. Any other command fails the test until it is classified here.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cleanEnv } from './support/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = join(ROOT, 'README.md');
/** What a `-` for a secret reads from standard input. */
const STDIN = 'a-client-secret-from-stdin';

/** The commands of the README's `sh` blocks, one per line or `&&` part, comments removed. */
export function readmeCommands(markdown: string): string[] {
  const commands: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      const command = line.replace(/\s+#.*$/, '').trim();
      if (command) commands.push(...command.split('&&').map((c) => c.trim()));
    }
  }
  return commands;
}

function run(args: string[], cwd: string, input?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(args[0]!, args.slice(1), { cwd, env: cleanEnv() }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input ?? '');
  });
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; workspaces: string[] };

/** Why an `npm …` set-up line is right, or an error saying what is wrong with it. */
function checkNpm(args: string[]): void {
  const [, verb, ...rest] = args;
  if (verb === 'start' || verb === 'test') return void expect(pkg.scripts, `npm ${verb}`).toHaveProperty(verb!);
  if (verb === 'run') return void expect(pkg.scripts, `npm run ${rest[0]}`).toHaveProperty(rest[0]!);
  if (verb === 'install' && rest.length === 0) return;
  if (verb === 'pack') {
    const workspaces = rest.filter((_, i) => rest[i - 1] === '-w');
    expect(workspaces.length).toBeGreaterThan(0);
    for (const w of workspaces) expect(pkg.workspaces, `npm pack -w ${w}`).toContain(w);
    return;
  }
  throw new Error(`README: \`${args.join(' ')}\` is an npm command this test does not know; classify it in readme.test.ts.`);
}

let tmp: string;
beforeAll(() => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'everyauth-readme-'));
  writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'readme-app', private: true }));
  const bin = join(tmp, 'node_modules', '.bin', 'everyauth');
  mkdirSync(dirname(bin), { recursive: true });
  symlinkSync(join(ROOT, 'packages/cli/bin/everyauth.js'), bin);
});
afterAll(() => tmp && rmSync(tmp, { recursive: true, force: true }));

describe("the README's commands", () => {
  it('run as written, in order, in a fresh folder', async () => {
    const commands = readmeCommands(readFileSync(README, 'utf8'));
    let ran = 0;
    for (const command of commands) {
      const args = command.split(/\s+/);
      if (args[0] === 'npm') {
        checkNpm(args);
        continue;
      }
      if (args[0] !== 'npx' || args[1] !== 'everyauth') {
        throw new Error(`README: \`${command}\` is neither an npm set-up line nor \`npx everyauth …\`; classify it in readme.test.ts.`);
      }
      const result = await run(args, tmp, args.includes('-') ? STDIN : undefined);
      expect(result.code, `\`${command}\` exited ${result.code}:\n${result.stderr}`).toBe(0);
      ran++;
    }
    expect(ran).toBeGreaterThanOrEqual(4);
    expect(existsSync(join(tmp, '.everyauth', 'config.json'))).toBe(true);
  });

  it('and the guides under docs/ link only to files that exist', () => {
    const pages = [
      README,
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => join(ROOT, 'docs', f)),
    ];
    const missing = pages.flatMap((page) =>
      [...readFileSync(page, 'utf8').matchAll(/\]\(((?!https?:|#|mailto:)[^)#\s]+)/g)]
        .map((m) => m[1]!)
        .filter((link) => !existsSync(join(dirname(page), link)))
        .map((link) => `${page.slice(ROOT.length)} → ${link}`),
    );
    expect(missing).toEqual([]);
  });
});
