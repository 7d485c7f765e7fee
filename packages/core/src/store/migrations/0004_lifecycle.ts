import type { Kysely } from 'kysely';

/**
 * An identity's life after its first grant (issue 15): app-owned metadata, when refreshes started
 * failing (which turns into `dead` after the configured days), the last health check and its
 * outcome; events carry the identity's tags (webhook payloads name them); an authorization session
 * may re-authorize one given identity (a reconnect) and say whether another provider account may
 * take its place.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('identities')
    .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
  await db.schema.alterTable('identities').addColumn('failing_since', 'bigint').execute();
  await db.schema.alterTable('identities').addColumn('last_checked_at', 'bigint').execute();
  // 1 healthy, 0 the last check failed, NULL never checked.
  await db.schema.alterTable('identities').addColumn('healthy', 'integer').execute();
  await db.schema
    .alterTable('events')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
  await db.schema.alterTable('auth_sessions').addColumn('identity_id', 'text').execute();
  await db.schema
    .alterTable('auth_sessions')
    .addColumn('allow_account_change', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('identities_failing').on('identities').column('failing_since').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('identities_failing').execute();
  for (const c of ['metadata', 'failing_since', 'last_checked_at', 'healthy'])
    await db.schema.alterTable('identities').dropColumn(c).execute();
  await db.schema.alterTable('events').dropColumn('tags').execute();
  for (const c of ['identity_id', 'allow_account_change']) await db.schema.alterTable('auth_sessions').dropColumn(c).execute();
}
