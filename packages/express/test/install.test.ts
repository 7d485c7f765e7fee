/**
 * The packages as a user outside this repository gets them: `npm pack` on each workspace, then a
 * fresh app in a temp folder installs the tarballs (real folders, no workspace links), sets up a
 * service with the packaged `everyauth` command, and runs an authorization and getIdentity against
 * oidc-provider, once with `import` (ESM) and once with `require` (CommonJS).
 *
 * Cost: one pack and one install. Third-party packages come from the npm cache where it has them
 * (--prefer-offline; CI reaches only the npm registry). better-sqlite3's compiled addon is copied
 * from this checkout's install, of the same version, instead of compiling it again for two
 * minutes; install scripts are skipped for that reason only.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { cleanEnv } from '../../cli/test/support/cli.js';
import { freePort } from '../../server/test/support/server.js';
import { CookieJar, location } from './support/app.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['oauth-server', 'core', 'express', 'server', 'cli'] as const;
const SECRET = 'install-test-client-secret';

let tmp: string;
let app: string;
let tarballs: Record<(typeof PACKAGES)[number], string>;
let auth: AuthServer;

async function sh(cmd: string, args: string[], options: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }) {
  const child = run(cmd, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), maxBuffer: 32 * 1024 * 1024 });
  if (options.input !== undefined) child.child.stdin!.end(options.input);
  return child;
}

beforeAll(async () => {
  for (const p of PACKAGES) {
    if (!existsSync(join(ROOT, 'packages', p, 'dist', 'index.js')))
      throw new Error(`packages/${p} is not built: run \`npx tsc -b\` first.`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'everyauth-install-'));
  app = join(tmp, 'app');
  mkdirSync(join(tmp, 'tgz'));
  mkdirSync(app);
  const packed = await sh(
    'npm',
    ['pack', ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`]), '--pack-destination', join(tmp, 'tgz'), '--json'],
    {
      cwd: ROOT,
    },
  );
  const files = (JSON.parse(packed.stdout) as { name: string; filename: string }[]).map((f) => [
    f.name.replace('@everyauth/', ''),
    f.filename,
  ]);
  tarballs = Object.fromEntries(files.map(([name, file]) => [name, join(tmp, 'tgz', file!)])) as typeof tarballs;

  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'outside-app', version: '1.0.0', private: true }));
  const express = JSON.parse(readFileSync(join(ROOT, 'node_modules/express/package.json'), 'utf8')).version as string;
  await sh(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      ...PACKAGES.map((p) => tarballs[p]),
      `express@${express}`,
    ],
    { cwd: app },
  );
  const addon = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
  mkdirSync(join(app, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
  copyFileSync(join(ROOT, addon), join(app, addon));

  auth = await startAuthServer({ clients: [] });
}, 300_000);

afterAll(async () => {
  await auth?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  it.each(PACKAGES)('@everyauth/%s: dist with types, README and LICENSE, and no sources or tests', async (p) => {
    const { stdout } = await sh('tar', ['-tzf', tarballs[p]], { cwd: tmp });
    const entries = stdout.trim().split('\n');
    for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) {
      expect(entries, file).toContain(`package/${file}`);
    }
    expect(entries.filter((e) => /^package\/(src\/.*\.ts|test\/)/.test(e))).toEqual([]);
    const extra = {
      'oauth-server': 'dist/index.d.ts',
      core: 'catalog/aliases/fusebit.json',
      express: 'dist/error-handler.js',
      server: 'src/console/assets/index.html',
      cli: 'bin/everyauth.js',
    };
    expect(entries).toContain(`package/${extra[p]}`);
  });
});

describe('an app outside the repository', () => {
  it('has the packages as installed folders, not links to this checkout', () => {
    for (const p of PACKAGES) expect(lstatSync(join(app, 'node_modules/@everyauth', p)).isSymbolicLink(), p).toBe(false);
  });

  it('types-checks an import of @everyauth/express with the packaged declarations', async () => {
    writeFileSync(
      join(app, 'check.mts'),
      "import everyauth, { type FreshIdentity } from '@everyauth/express';\n" +
        "export const token: Promise<FreshIdentity | undefined> = everyauth.getIdentity('google', 'user-1');\n" +
        'export const handler = everyauth.errorHandler();\n',
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--skipLibCheck', 'check.mts'];
    await expect(sh(process.execPath, [tsc, ...args], { cwd: app })).resolves.toBeDefined();
  });

  const APPS = {
    'app.mjs': "import express from 'express';\nimport everyauth from '@everyauth/express';\n",
    'app.cjs': "const express = require('express');\nconst everyauth = require('@everyauth/express');\n",
  };
  const BODY = `
const app = express();
app.use('/local/authorize/:userId', everyauth.authorize('local', {
  finishedUrl: '/done',
  mapToUserId: (req) => req.params.userId,
}));
app.get('/done', async (req, res) => {
  const identity = await everyauth.getIdentity('local', req.query.userId);
  res.json({ userId: identity.userId, profile: identity.profile, hasToken: identity.accessToken.length > 0 });
});
app.use(everyauth.errorHandler());
app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

  async function startApp(file: string, port: number): Promise<ChildProcess> {
    writeFileSync(join(app, file), APPS[file as keyof typeof APPS] + BODY);
    const child = spawn(process.execPath, [file], {
      cwd: app,
      env: cleanEnv({ PORT: String(port), EVERYAUTH_BASE_URL: `http://127.0.0.1:${port}` }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => (output += d) && output.includes('listening') && resolve());
      child.stderr!.on('data', (d: Buffer) => (output += d));
      child.on('exit', (code) => reject(new Error(`${file} exited with ${code}:\n${output}`)));
    });
    return child;
  }

  it('sets up a service with the packaged everyauth command (npx everyauth)', async () => {
    await sh('npx', ['everyauth', 'init'], { cwd: app });
    await sh('npx', ['everyauth', 'provider', 'add', 'local-idp', '--issuer', auth.issuer], { cwd: app });
    await sh(
      'npx',
      ['everyauth', 'service', 'set', 'local', '--provider', 'local-idp', '--client-id', 'outside-app', '--client-secret', '-'],
      {
        cwd: app,
        input: SECRET,
      },
    );
    const { stdout } = await sh('npx', ['everyauth', 'service', 'get', 'local', '-o', 'json'], { cwd: app });
    expect(JSON.parse(stdout)).toMatchObject({ id: 'local', providerId: 'local-idp', hasClientSecret: true });
  });

  it.each(Object.keys(APPS))('%s authorizes a user and gets a fresh token for them', async (file) => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    await auth.addClient({ client_id: 'outside-app', client_secret: SECRET, redirect_uris: [`${origin}/local/callback`] });
    const child = await startApp(file, port);
    try {
      const browser = new CookieJar();
      const atProvider = location(await browser.get(`${origin}/local/authorize/alice`), origin);
      expect(atProvider.origin).toBe(auth.issuer);
      const landed = await browser.get(await auth.authorize(atProvider, { login: 'alice' }));
      const done = await browser.get(location(landed, origin));
      expect(done.status).toBe(200);
      expect(await done.json()).toEqual({ userId: 'alice', profile: expect.objectContaining({ id: 'alice' }), hasToken: true });
    } finally {
      child.kill();
    }
  });
});
