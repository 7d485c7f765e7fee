import type { Kysely } from 'kysely';

/**
 * A placeholder. This migration used to create the server's tables (API keys, webhooks, their
 * deliveries); those now belong to @everyauth/server, which migrates them with its own migration
 * set. Kysely refuses to run on a database whose executed migrations it cannot find, so the name
 * `0002_server` stays, doing nothing: databases that ran the old one keep their tables, which the
 * server's first migration then adopts.
 */
export async function up(_db: Kysely<any>): Promise<void> {}

export async function down(_db: Kysely<any>): Promise<void> {}
