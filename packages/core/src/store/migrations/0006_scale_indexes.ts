import { sql, type Kysely } from 'kysely';

/**
 * Indexes that the lists of a large store need (docs/performance.md, bench:scale at 1M identities):
 *
 * - `identities (service_id, id)`: a listing's page (`service_id = ? [AND id > ?] ORDER BY id LIMIT
 *   n`) walks it and stops after the page. Without it PostgreSQL walked the primary key past every
 *   other service's identities (ids sort by creation time, so a service added later has all its ids
 *   after the others'): 0.7–1.4 s for the first page of such a service.
 * - the scheduled health checks' work list (`listUnchecked`: active identities least recently
 *   checked first), a partial index on `coalesce(last_checked_at, 0)`: without it every round
 *   sorted all active identities (about 0.9 s at 1M, once a minute by default).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('identities_service_id').on('identities').columns(['service_id', 'id']).execute();
  await db.schema
    .createIndex('identities_unchecked')
    .on('identities')
    .expression(sql`coalesce(last_checked_at, 0)`)
    .where(sql.ref('status'), '=', 'active')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('identities_unchecked').execute();
  await db.schema.dropIndex('identities_service_id').execute();
}
