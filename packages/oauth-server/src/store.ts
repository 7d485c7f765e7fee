import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

type Payload = Record<string, any>;

interface Entry {
  payload: Payload;
  /** Epoch ms; `null` for entries that never expire (clients). */
  expiresAt: number | null;
}

/** What the state file holds: oidc-provider's models plus the keys that must outlive a restart. */
interface Snapshot {
  keys: { cookies: string[]; jwk: Record<string, unknown> } | null;
  entries: Record<string, Entry>;
}

/**
 * The storage oidc-provider uses (its adapter interface), in memory and, given a file, written
 * back after each change: a restart of `everyauth serve` then keeps sandbox grants and refresh
 * tokens, so identities made through the sandbox keep refreshing. Our own rather than
 * oidc-provider's LRU adapter because that one can neither persist nor be enumerated (revoking an
 * account's grants needs to list them), and clients live here so they can change after start.
 */
export class GrantStore {
  readonly #entries = new Map<string, Entry>();
  readonly #file: string | undefined;
  #keys: Snapshot['keys'] = null;
  #writeScheduled = false;

  constructor(file?: string) {
    this.#file = file;
    if (file) this.#load(file);
  }

  /** Cookie and signing keys: the stored ones, else `make()`'s, stored for next time. */
  keys(make: () => NonNullable<Snapshot['keys']>): NonNullable<Snapshot['keys']> {
    if (!this.#keys) {
      this.#keys = make();
      this.#changed();
    }
    return this.#keys;
  }

  upsert(model: string, id: string, payload: Payload, expiresInSeconds?: number): void {
    const expiresAt = expiresInSeconds === undefined ? null : Date.now() + expiresInSeconds * 1000;
    this.#entries.set(`${model}:${id}`, { payload, expiresAt });
    this.#changed();
  }

  find(model: string, id: string): Payload | undefined {
    const key = `${model}:${id}`;
    const entry = this.#entries.get(key);
    if (entry && (entry.expiresAt === null || entry.expiresAt > Date.now())) return entry.payload;
    if (entry) this.#delete(key);
    return undefined;
  }

  /** Ids of the model's live entries whose payload matches. */
  ids(model: string, matches: (payload: Payload) => boolean): string[] {
    const prefix = `${model}:`;
    return [...this.#entries.keys()]
      .filter((key) => key.startsWith(prefix))
      .map((key) => key.slice(prefix.length))
      .filter((id) => {
        const payload = this.find(model, id);
        return payload !== undefined && matches(payload);
      });
  }

  /** Removes the matching grants and every token issued under them, whatever its model; returns how many grants. */
  destroyGrants(matches: (grant: Payload) => boolean): number {
    const grantIds = new Set(this.ids('Grant', matches));
    for (const grantId of grantIds) this.#delete(`Grant:${grantId}`);
    for (const [key, { payload }] of this.#entries) if (grantIds.has(payload.grantId)) this.#delete(key);
    return grantIds.size;
  }

  /** The adapter oidc-provider calls for one model (Client, Grant, RefreshToken, Session, …). */
  adapter(model: string) {
    const firstWhere = (matches: (payload: Payload) => boolean): Payload | undefined => {
      const [id] = this.ids(model, matches);
      return id === undefined ? undefined : this.find(model, id);
    };
    return {
      upsert: async (id: string, payload: Payload, expiresIn?: number) => this.upsert(model, id, payload, expiresIn),
      find: async (id: string) => this.find(model, id),
      findByUid: async (uid: string) => firstWhere((payload) => payload.uid === uid),
      findByUserCode: async (userCode: string) => firstWhere((payload) => payload.userCode === userCode),
      destroy: async (id: string) => this.#delete(`${model}:${id}`),
      consume: async (id: string) => {
        const payload = this.find(model, id);
        if (payload) {
          payload.consumed = Math.floor(Date.now() / 1000);
          this.#changed();
        }
      },
      revokeByGrantId: async (grantId: string) => {
        for (const id of this.ids(model, (payload) => payload.grantId === grantId)) this.#delete(`${model}:${id}`);
      },
    };
  }

  /** Writes any pending change now (on close). */
  flush(): void {
    if (!this.#file || !this.#writeScheduled) return;
    this.#writeScheduled = false;
    this.#write(this.#file);
  }

  #delete(key: string): void {
    if (this.#entries.delete(key)) this.#changed();
  }

  /** Batches the writes of one burst of changes (an authorization touches several models) into one. */
  #changed(): void {
    if (!this.#file || this.#writeScheduled) return;
    this.#writeScheduled = true;
    setImmediate(() => {
      try {
        this.flush();
      } catch (err) {
        // Best effort: the sandbox keeps working from memory, it only forgets its grants on restart.
        process.emitWarning(`The sandbox could not save its state to ${this.#file}: ${(err as Error).message}`);
      }
    });
  }

  #load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const snapshot = JSON.parse(text) as Snapshot;
    this.#keys = snapshot.keys;
    const now = Date.now();
    for (const [key, entry] of Object.entries(snapshot.entries)) {
      if (entry.expiresAt === null || entry.expiresAt > now) this.#entries.set(key, entry);
    }
  }

  #write(file: string): void {
    const now = Date.now();
    const entries = Object.fromEntries([...this.#entries].filter(([, entry]) => entry.expiresAt === null || entry.expiresAt > now));
    const snapshot: Snapshot = { keys: this.#keys, entries };
    mkdirSync(dirname(file), { recursive: true });
    // Written aside then renamed, so a crash mid-write leaves the previous state rather than half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify(snapshot), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}
