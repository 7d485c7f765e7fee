import { join } from 'node:path';
import { openBroker, resolveConfig } from '@everyauth/core';
import type { AuthServer } from '../../../core/test/support/auth-server.js';
import { newProject, type Project } from './cli.js';

/**
 * Runs one authorization flow against the test provider with a LocalBroker opened on a CLI project's
 * store and key, as the application embedding EveryAuth would: begin, log in and consent, callback.
 */
export async function authorizeInProject(
  projectDir: string,
  auth: AuthServer,
  serviceId: string,
  userId: string,
  extra: { tenantId?: string; tags?: Record<string, string> } = {},
) {
  const config = await resolveConfig({ dir: join(projectDir, '.everyauth'), env: {} });
  const broker = await openBroker(config, { env: {} });
  try {
    const started = await broker.beginAuthorization({ serviceId, userId, ...extra });
    const callback = await auth.authorize(started.url, { login: userId });
    return await broker.completeAuthorization(serviceId, callback.searchParams);
  } finally {
    await broker.close();
  }
}

/**
 * A new CLI project (base URL http://127.0.0.1:3999) with the test provider as `local-idp` and one
 * service on it, set up through the CLI itself; the client must be registered at `auth` already.
 */
export async function projectWithService(
  auth: AuthServer,
  service: { id: string; clientId: string; clientSecret: string; apiBaseUrl?: string },
): Promise<Project> {
  const apiBase = service.apiBaseUrl ? ['--api-base-url', service.apiBaseUrl] : [];
  const p = newProject();
  const steps = [
    ['init', '--base-url', 'http://127.0.0.1:3999'],
    ['provider', 'add', 'local-idp', '--issuer', auth.issuer],
    ['service', 'set', service.id, '--provider', 'local-idp', '--client-id', service.clientId, '--client-secret', '-', ...apiBase],
  ];
  for (const args of steps) {
    const r = await p.run(args, { input: service.clientSecret });
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  }
  return p;
}
