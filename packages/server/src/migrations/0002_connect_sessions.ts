import type { Kysely } from 'kysely';

/**
 * Connect links (issue 15): one row per link an app made for one of its users. The token itself is
 * never stored, only its SHA-256, so a copy of the database cannot open a pending link; the browser
 * that opens it first is bound by the hash of a cookie secret.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('connect_sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull()) // '' for none, as identities store it
    .addColumn('tags', 'text', (c) => c.notNull()) // JSON object
    .addColumn('allowed_services', 'text', (c) => c.notNull()) // JSON array of service ids
    .addColumn('finished_url', 'text')
    .addColumn('browser_binding', 'text') // SHA-256 of the first browser's cookie secret
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('connect_sessions_expires').on('connect_sessions').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('connect_sessions').execute();
}
