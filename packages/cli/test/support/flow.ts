import { join } from 'node:path';
import { openBroker, resolveConfig } from '@everyauth/core';
import type { AuthServer } from '../../../core/test/support/auth-server.js';

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
