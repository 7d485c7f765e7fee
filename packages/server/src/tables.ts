import type { Kysely } from 'kysely';
import { sealedLabel, type SealedColumn, type Store } from '@everyauth/core';

/** The server's own tables (migrations/, a set apart from core's), typed for Kysely next to core's. */
export type ApiKeyTable = {
  id: string;
  name: string;
  hash: string;
  scopes: string; // JSON array
  created_at: number;
};

export type WebhookTable = {
  id: string;
  url: string;
  secret: string;
  events: string; // JSON array
  created_at: number;
};

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export type WebhookDeliveryTable = {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  response_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
};

export type ConnectSessionTable = {
  token_hash: string;
  user_id: string;
  tenant_id: string;
  tags: string; // JSON object
  allowed_services: string; // JSON array
  finished_url: string | null;
  browser_binding: string | null;
  expires_at: number;
  finished_at: number | null;
  created_at: number;
};

export type ServerTables = {
  connect_sessions: ConnectSessionTable;
  api_keys: ApiKeyTable;
  webhooks: WebhookTable;
  webhook_deliveries: WebhookDeliveryTable;
};

/** The store's connection, seeing the server's tables too. */
export const serverDb = (store: Store): Kysely<ServerTables> => store.db.withTables<ServerTables>() as unknown as Kysely<ServerTables>;

/** The server's sealed columns, for `everyauth keys` to count and re-seal next to core's (SEALED_COLUMNS). */
export const SERVER_SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'webhooks', key: 'id', column: 'secret', aad: sealedLabel.webhook },
];
