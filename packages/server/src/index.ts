export { buildServer, serverLogger, type BuildServerOptions, type EventListener } from './server.js';
export { startServer, type RunningServer, type StartServerOptions } from './start.js';
export { limitHeapGrowth, SERVER_HEAP_GROWING_PERCENT } from './heap-growth.js';
export { createApiKey, listApiKeys, deleteApiKey, SCOPES, type ApiKeySummary, type Scope } from './api-keys.js';
export {
  signWebhook,
  verifyWebhookSignature,
  SIGNATURE_HEADER,
  WEBHOOK_EVENTS,
  type Webhook,
  type WebhookDelivery,
  type WebhookOptions,
  type WebhookPayload,
} from './webhooks.js';
export type { BackgroundRefreshOptions } from './background-refresh.js';
export { createSandbox, startSandbox, type Sandbox, type SandboxOptions } from './sandbox/index.js';
export { migrateServerTables, SERVER_MIGRATION_TABLE } from './migrations/index.js';
export { SERVER_SEALED_COLUMNS } from './tables.js';
export { reconnectLink, RECONNECT_LINK_LIFETIME_MS, type ReconnectTicketOptions } from './reconnect-links.js';
export type { LifecycleLoopOptions } from './lifecycle-loop.js';
