import type { Kysely } from 'kysely';

// A service's own API allow-list (JSON array of base URLs, or NULL for the provider's): where the proxy may send its credentials.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('services').addColumn('api_base_urls', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('services').dropColumn('api_base_urls').execute();
}
