import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, newProject, type Project } from './support/cli.js';

let local: Project;
let remote: Project;
let server: ChildProcess | undefined;

beforeAll(() => {
  assertBuilt();
  local = newProject();
  remote = newProject();
});
afterAll(() => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  local?.remove();
  remote?.remove();
});

/** Starts `everyauth serve` on a free port and resolves with its URL once it listens. */
function serve(project: Project): Promise<{ child: ChildProcess; url: string }> {
  const child = project.spawn(['serve', '--port', '0', '--log-level', 'warn']);
  child.stdin!.end();
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve({ child, url: match[1]! });
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

describe('serve, apikey and a remote profile', () => {
  it('makes the first admin key on the store, serves it, and the CLI then works through the server', async () => {
    expect((await local.run(['init'])).code).toBe(0);
    const admin = await local.json(['apikey', 'create', '--name', 'ops', '--scope', 'admin']);
    expect(admin.key).toMatch(/^ea_/);
    const listed = await local.json(['apikey', 'ls']);
    expect(listed).toEqual([{ id: admin.id, name: 'ops', scopes: ['admin'], createdAt: admin.createdAt }]);
    expect((await local.run(['apikey', 'ls'])).stdout).not.toContain(admin.key);

    const running = await serve(local);
    server = running.child;

    const init = await remote.run(['init', '--server', running.url, '--api-key', '-'], { input: `${admin.key}\n` });
    expect(init.code, init.stderr).toBe(0);
    // The server may add services of its own (a sandbox); ours is not there yet.
    expect((await remote.json(['service', 'ls'])).map((s: { id: string }) => s.id)).not.toContain('github');
    expect((await remote.json(['provider', 'ls', '--search', 'github'])).map((p: { id: string }) => p.id)).toContain('github');
    const set = await remote.json(['service', 'set', 'github', '--client-id', 'gh-client', '--client-secret', '-'], { input: 'gh-secret' });
    expect(set).toMatchObject({ id: 'github', providerId: 'github', hasClientSecret: true });
    // Written through the server into the local store.
    expect(await local.json(['service', 'get', 'github'])).toMatchObject({ clientId: 'gh-client', hasClientSecret: true });

    const app = await remote.json(['apikey', 'create', '--name', 'app', '--scope', 'tokens:read']);
    expect((await remote.json(['apikey', 'ls'])).map((k: { name: string }) => k.name).sort()).toEqual(['app', 'ops']);
    expect((await remote.run(['apikey', 'rm', app.id])).code).toBe(0);
    const gone = await remote.run(['apikey', 'rm', app.id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('everyauth apikey ls');

    const keys = await remote.run(['keys', 'status']);
    expect(keys.code).toBe(1);
    expect(keys.stderr).toContain(`talks to the server ${running.url}`);

    const unknown = await remote.run(['service', 'get', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No service "nope"');

    const exit = new Promise<number | null>((resolve) => running.child.on('exit', (code) => resolve(code)));
    running.child.kill('SIGTERM');
    expect(await exit).toBe(0);
  }, 120_000);
});
