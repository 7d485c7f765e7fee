import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
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

  it('on a fresh folder sets up the embedded default, prints an admin key once and the console URL', async () => {
    const fresh = newProject();
    try {
      const child = fresh.spawn(['serve', '--port', '0', '--log-level', 'warn']);
      child.stdin!.end();
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const deadline = Date.now() + 60_000;
      while (!/Admin API key/.test(stdout) || !/Console: /.test(stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const key = /Admin API key[^:]*: (ea_\S+)/.exec(stdout)![1]!;
      const consoleUrl = /Console: (http:\/\/\S+)/.exec(stderr)![1]!;
      expect(statSync(join(fresh.dir, '.everyauth', 'master.key')).mode & 0o777).toBe(0o600);
      const services = await fetch(new URL('/v1/services', consoleUrl), { headers: { authorization: `Bearer ${key}` } });
      expect(services.status).toBe(200);
      expect((await fetch(consoleUrl)).status).toBe(200);
      const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);

      // A second start keeps the key and prints no new one.
      const again = fresh.spawn(['serve', '--port', '0', '--log-level', 'warn']);
      again.stdin!.end();
      let out2 = '';
      let err2 = '';
      again.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out2 += chunk));
      again.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err2 += chunk));
      while (!/Console: /.test(err2)) {
        if (Date.now() > deadline + 60_000 || again.exitCode !== null) throw new Error(`serve did not start again: ${err2}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out2).not.toContain('Admin API key');
      const exit2 = new Promise<number | null>((resolve) => again.on('exit', (code) => resolve(code)));
      again.kill('SIGTERM');
      expect(await exit2).toBe(0);
    } finally {
      fresh.remove();
    }
  }, 150_000);
});

describe('serve with a bad environment variable', () => {
  it('refuses to start, naming the variable, what is wrong and a good value', async () => {
    const fresh = newProject();
    try {
      const result = await fresh.run(['serve', '--port', '0'], { env: { EVERYAUTH_RATE_LIMIT: 'abc' } });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('EVERYAUTH_RATE_LIMIT="abc" is not valid: expected a whole number of requests per minute');
      expect(result.stderr).toContain('for example EVERYAUTH_RATE_LIMIT=600');
      expect(result.stderr).not.toContain('listening');
    } finally {
      fresh.remove();
    }
  });
});
