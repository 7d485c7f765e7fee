import type { Kysely } from 'kysely';

/**
 * A failed refresh recorded on its identity, so that every caller and replica shares its outcome
 * during a cool-down instead of asking the provider again (docs/operations.md).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('identities').addColumn('refresh_failed_at', 'bigint').execute();
  await db.schema.alterTable('identities').addColumn('refresh_failure', 'text').execute();
  await db.schema.alterTable('identities').addColumn('refresh_retry_at', 'bigint').execute();
  await db.schema
    .alterTable('identities')
    .addColumn('refresh_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['refresh_failed_at', 'refresh_failure', 'refresh_retry_at', 'refresh_failures']) {
    await db.schema.alterTable('identities').dropColumn(column).execute();
  }
}
