/**
 * Bundles: a store's services, custom providers and identities, moved between stores and master keys
 * (`everyauth export` / `everyauth import`).
 *
 * The file is a versioned JSON envelope. Its payload (gzipped JSON, secrets and tokens in clear) is
 * encrypted with AES-256-GCM under a key derived from a passphrase with scrypt; the envelope's
 * header is the associated data, so a changed header fails like a changed ciphertext. Nothing is
 * written to a store before the whole bundle has been decrypted and validated.
 *
 * Import re-seals every secret with the target's vault (the row id as associated data) and upserts
 * by id, so importing the same bundle twice leaves the store as after the first time.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback, type ScryptOptions } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { parseProvider } from './catalog/index.js';
import { sealedLabel } from './credentials.js';
import { DecryptionFailed, InvalidInput } from './errors.js';
import { apiBase } from './proxy/target.js';
import type { Store } from './store/store.js';
import type { Vault } from './vault.js';

export const BUNDLE_FORMAT = 'everyauth-bundle';
export const BUNDLE_VERSION = 1;

/** scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB and ~0.1 s per derivation; bounded on read so a crafted file cannot ask for more. */
const KDF_DEFAULTS = { N: 2 ** 15, r: 8, p: 1 };
const KDF_MAX_N = 2 ** 20;
const MIN_PASSPHRASE = 8;

const Envelope = z.object({
  format: z.literal(BUNDLE_FORMAT),
  version: z.number().int(),
  createdAt: z.string(),
  kdf: z.object({
    name: z.literal('scrypt'),
    salt: z.string().min(16),
    N: z
      .number()
      .int()
      .min(2 ** 10)
      .max(KDF_MAX_N),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
  }),
  cipher: z.object({ name: z.literal('aes-256-gcm'), iv: z.string().length(16) }),
  compression: z.literal('gzip'),
  ciphertext: z.string(),
});
type Envelope = z.infer<typeof Envelope>;

const StringMap = z.record(z.string(), z.string());

const BundleProvider = z.object({
  id: z.string(),
  definition: z.record(z.string(), z.unknown()),
  createdAt: z.number(),
  updatedAt: z.number(),
});
const BundleService = z.object({
  id: z.string(),
  providerId: z.string(),
  clientId: z.string(),
  clientSecret: z.string().nullable(),
  scopes: z.array(z.string()),
  params: StringMap,
  variables: StringMap,
  /** The service's own API base URLs (the proxy's allow-list), null for the provider's; bundles from before it existed have none. */
  apiBaseUrls: z.array(z.string()).min(1).nullable().default(null),
  createdAt: z.number(),
  updatedAt: z.number(),
});
const BundleIdentity = z.object({
  id: z.string().startsWith('idn_'),
  serviceId: z.string(),
  userId: z.string(),
  /** '' for none, as stored. */
  tenantId: z.string(),
  status: z.enum(['active', 'needs_reauth', 'dead', 'revoked']),
  /** The token set as the broker sealed it (opaque here). */
  tokens: z.unknown(),
  expiresAt: z.number().nullable(),
  scope: z.string().nullable(),
  profile: z.record(z.string(), z.unknown()),
  tags: StringMap,
  /** The app's metadata; bundles from before it existed have none. */
  metadata: z.record(z.string(), z.unknown()).default({}),
  lastRefreshAt: z.number().nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export const BundleContents = z.object({
  exportedAt: z.string(),
  providers: z.array(BundleProvider),
  services: z.array(BundleService),
  identities: z.array(BundleIdentity),
});
export type BundleContents = z.infer<typeof BundleContents>;

export interface BundleCounts {
  providers: number;
  services: number;
  identities: number;
}

export interface BundleProgress {
  done: number;
  total: number;
}

type Progress = (progress: BundleProgress) => void;

// ---------------------------------------------------------------------------------------------------
// Reading and writing stores

/** Everything a bundle carries, read from `store` with secrets opened by `vault`. */
export async function readBundleContents(
  store: Store,
  vault: Vault,
  options: { onProgress?: Progress; now?: Date } = {},
): Promise<BundleContents> {
  const providers = (await store.listProviders()).map((r) => ({
    id: r.id,
    definition: JSON.parse(r.definition) as Record<string, unknown>,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }));
  const services = (await store.listServices()).map((r) => ({
    id: r.id,
    providerId: r.provider_id,
    clientId: r.client_id,
    clientSecret: r.client_secret === null ? null : vault.open(r.client_secret, sealedLabel.service(r.id)),
    scopes: JSON.parse(r.scopes) as string[],
    params: JSON.parse(r.params) as Record<string, string>,
    variables: JSON.parse(r.variables) as Record<string, string>,
    apiBaseUrls: r.api_base_urls ? (JSON.parse(r.api_base_urls) as string[]) : null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }));
  const total = Number(
    (
      await store.db
        .selectFrom('identities')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
  const identities: BundleContents['identities'] = [];
  options.onProgress?.({ done: 0, total });
  let after: string | undefined;
  for (;;) {
    let q = store.db.selectFrom('identities').selectAll();
    if (after !== undefined) q = q.where('id', '>', after);
    const rows = await q.orderBy('id').limit(1000).execute();
    if (rows.length === 0) break;
    for (const r of rows) {
      identities.push({
        id: r.id,
        serviceId: r.service_id,
        userId: r.user_id,
        tenantId: r.tenant_id,
        status: r.status,
        tokens: vault.openJson(r.tokens, sealedLabel.identity(r.id)),
        expiresAt: r.expires_at === null ? null : Number(r.expires_at),
        scope: r.scope,
        profile: JSON.parse(r.profile) as Record<string, unknown>,
        tags: JSON.parse(r.tags) as Record<string, string>,
        metadata: JSON.parse(r.metadata) as Record<string, unknown>,
        lastRefreshAt: r.last_refresh_at === null ? null : Number(r.last_refresh_at),
        createdAt: Number(r.created_at),
        updatedAt: Number(r.updated_at),
      });
    }
    after = rows[rows.length - 1]!.id;
    options.onProgress?.({ done: identities.length, total: Math.max(total, identities.length) });
  }
  return { exportedAt: (options.now ?? new Date()).toISOString(), providers, services, identities };
}

/**
 * Writes a bundle's contents into `store`, sealing with `vault`, in one transaction: all or nothing.
 * Upserts by id; an identity of the store with the same (service, tenant, user) but another id is
 * replaced by the bundle's, since that triple is unique.
 */
export async function writeBundleContents(
  store: Store,
  vault: Vault,
  contents: BundleContents,
  options: { onProgress?: Progress } = {},
): Promise<BundleCounts> {
  const checked = BundleContents.parse(contents);
  const providers = checked.providers.map((p) => ({ ...p, definition: parseProvider(p.definition, `the bundle's provider "${p.id}"`) }));
  // Checked as putService checks them, before anything is written: these URLs receive credentials.
  const baseUrls = checked.services.map((s) =>
    s.apiBaseUrls === null ? null : JSON.stringify(s.apiBaseUrls.map((u) => apiBase(u, s.id))),
  );
  const total = checked.identities.length;
  await store.db.transaction().execute(async (trx) => {
    for (const p of providers) {
      const definition = JSON.stringify(p.definition);
      await trx
        .insertInto('providers')
        .values({ id: p.id, definition, created_at: p.createdAt, updated_at: p.updatedAt })
        .onConflict((oc) => oc.column('id').doUpdateSet({ definition, updated_at: p.updatedAt }))
        .execute();
    }
    for (const [index, s] of checked.services.entries()) {
      const row = {
        provider_id: s.providerId,
        client_id: s.clientId,
        client_secret: s.clientSecret === null ? null : vault.seal(s.clientSecret, sealedLabel.service(s.id)),
        scopes: JSON.stringify(s.scopes),
        params: JSON.stringify(s.params),
        variables: JSON.stringify(s.variables),
        api_base_urls: baseUrls[index]!,
        updated_at: s.updatedAt,
      };
      await trx
        .insertInto('services')
        .values({ id: s.id, ...row, created_at: s.createdAt })
        .onConflict((oc) => oc.column('id').doUpdateSet(row))
        .execute();
    }
    options.onProgress?.({ done: 0, total });
    let done = 0;
    for (const i of checked.identities) {
      const clash = trx
        .selectFrom('identities')
        .select('id')
        .where('service_id', '=', i.serviceId)
        .where('user_id', '=', i.userId)
        .where('tenant_id', '=', i.tenantId)
        .where('id', '!=', i.id);
      await trx.deleteFrom('identity_tags').where('identity_id', 'in', clash).execute();
      await trx
        .deleteFrom('identities')
        .where('service_id', '=', i.serviceId)
        .where('user_id', '=', i.userId)
        .where('tenant_id', '=', i.tenantId)
        .where('id', '!=', i.id)
        .execute();
      const fields = {
        service_id: i.serviceId,
        user_id: i.userId,
        tenant_id: i.tenantId,
        status: i.status,
        tokens: vault.sealJson(i.tokens, sealedLabel.identity(i.id)),
        expires_at: i.expiresAt,
        scope: i.scope,
        profile: JSON.stringify(i.profile),
        tags: JSON.stringify(i.tags),
        metadata: JSON.stringify(i.metadata),
        lease_owner: null,
        lease_until: null,
        last_refresh_at: i.lastRefreshAt,
        updated_at: i.updatedAt,
      };
      await trx
        .insertInto('identities')
        .values({ id: i.id, ...fields, version: 1, created_at: i.createdAt })
        // The version moves on, so a refresh that started before the import cannot write over it.
        .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ ...fields, version: eb('identities.version', '+', 1) })))
        .execute();
      await trx.deleteFrom('identity_tags').where('identity_id', '=', i.id).execute();
      const tags = Object.entries(i.tags).map(([key, value]) => ({ identity_id: i.id, key, value }));
      if (tags.length > 0) await trx.insertInto('identity_tags').values(tags).execute();
      done++;
      if (done % 200 === 0 || done === total) options.onProgress?.({ done, total });
    }
  });
  return { providers: providers.length, services: checked.services.length, identities: total };
}

// ---------------------------------------------------------------------------------------------------
// The encrypted envelope

function scrypt(passphrase: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) =>
    scryptCallback(passphrase.normalize('NFC'), salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** The header fields in a fixed order: the associated data of the ciphertext. */
function headerAad(e: Omit<Envelope, 'ciphertext'>): Buffer {
  return Buffer.from(
    JSON.stringify([
      e.format,
      e.version,
      e.createdAt,
      e.kdf.name,
      e.kdf.salt,
      e.kdf.N,
      e.kdf.r,
      e.kdf.p,
      e.cipher.name,
      e.cipher.iv,
      e.compression,
    ]),
    'utf8',
  );
}

/** Encrypts bundle contents under a passphrase; returns the file's text. */
export async function sealBundle(contents: BundleContents, passphrase: string, options: { now?: Date } = {}): Promise<string> {
  if (passphrase.length < MIN_PASSPHRASE)
    throw new InvalidInput(`The bundle passphrase must be at least ${MIN_PASSPHRASE} characters.`, 'passphrase');
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const header: Omit<Envelope, 'ciphertext'> = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    createdAt: (options.now ?? new Date()).toISOString(),
    kdf: { name: 'scrypt', salt: salt.toString('base64url'), ...KDF_DEFAULTS },
    cipher: { name: 'aes-256-gcm', iv: iv.toString('base64url') },
    compression: 'gzip',
  };
  const key = await scrypt(passphrase, salt, KDF_DEFAULTS);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(headerAad(header));
  const body = Buffer.concat([cipher.update(gzipSync(Buffer.from(JSON.stringify(contents), 'utf8'))), cipher.final(), cipher.getAuthTag()]);
  key.fill(0);
  return `${JSON.stringify({ ...header, ciphertext: body.toString('base64') })}\n`;
}

/**
 * Decrypts and validates a bundle. InvalidInput when the text is not a bundle or has a version this
 * build does not read; DecryptionFailed for a wrong passphrase or a changed file (GCM cannot tell them apart).
 */
export async function openBundle(text: string, passphrase: string): Promise<BundleContents> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidInput('This is not an EveryAuth bundle: it is not JSON (was the file cut short or edited?).', 'bundle');
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (format !== BUNDLE_FORMAT)
    throw new InvalidInput(`This is not an EveryAuth bundle: its "format" is not "${BUNDLE_FORMAT}".`, 'bundle');
  const version = (json as { version?: unknown }).version;
  if (typeof version === 'number' && version > BUNDLE_VERSION) {
    throw new InvalidInput(
      `This bundle has format version ${version}; this EveryAuth reads version ${BUNDLE_VERSION}. Upgrade EveryAuth to import it.`,
      'bundle',
    );
  }
  const parsed = Envelope.safeParse(json);
  if (!parsed.success || parsed.data.version !== BUNDLE_VERSION) {
    const issue = parsed.success ? 'version' : parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
    throw new InvalidInput(`The bundle's envelope is damaged (${issue}); export it again.`, 'bundle');
  }
  const envelope = parsed.data;
  const data = Buffer.from(envelope.ciphertext, 'base64');
  const iv = Buffer.from(envelope.cipher.iv, 'base64url');
  if (data.length < 17 || iv.length !== 12)
    throw new InvalidInput("The bundle's ciphertext is damaged (too short); export it again.", 'bundle');
  const key = await scrypt(passphrase, Buffer.from(envelope.kdf.salt, 'base64url'), envelope.kdf);
  let compressed: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(headerAad(envelope));
    decipher.setAuthTag(data.subarray(data.length - 16));
    compressed = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
  } catch {
    throw new DecryptionFailed(
      'Cannot decrypt the bundle: the passphrase is wrong, or the file was changed after export. Nothing was imported.',
    );
  } finally {
    key.fill(0);
  }
  const contents = BundleContents.safeParse(JSON.parse(gunzipSync(compressed).toString('utf8')));
  if (!contents.success) {
    throw new InvalidInput(
      `The bundle decrypted, but its contents are not valid (${contents.error.issues
        .slice(0, 3)
        .map((i) => i.path.join('.'))
        .join(', ')}).`,
      'bundle',
    );
  }
  return contents.data;
}
