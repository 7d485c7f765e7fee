/**
 * The vault: authenticated encryption of tokens and client secrets under one or more master keys.
 *
 * - AES-256-GCM (node:crypto), a fresh random 96-bit IV per value, a 128-bit tag.
 * - Sealed values are compact text: `ea1.<kid>.<iv b64url>.<ciphertext+tag b64url>`. `ea1` names the
 *   format version, so a later format can be introduced next to this one.
 * - The associated data authenticated with each value is `ea1.<kid>.<aad>` (the header plus the caller's
 *   context, e.g. `identity:<id>`), so a value copied to another row, or relabelled with another key id,
 *   does not open.
 * - Several keys are loaded at once; `seal` uses the current one, `open` the one the value names, so keys
 *   rotate without downtime: add a key (it becomes current), re-seal old values (`keyIdOf` finds them),
 *   then retire the old key.
 *
 * Key ids: `generateKey` makes 8 random hex characters; a bare key given in `EVERYAUTH_MASTER_KEY` gets
 * the first 8 hex characters of the SHA-256 of its 32 bytes, so its id is the same on every start.
 *
 * Nothing here logs, and no error message carries a plaintext or key material. There is no global state:
 * create a Vault (usually with `loadVault`) and pass it to whoever needs it.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { link, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigurationError, DecryptionFailed } from './errors.js';

/** One key of a key ring. `key` is the base64url encoding of exactly 32 random bytes. */
export interface KeyRingEntry {
  id: string;
  key: string;
  /** ISO 8601 time the key was made; informational. */
  createdAt?: string;
}

/** Every key the vault can decrypt with; `current` names the one new values are sealed with. */
export interface KeyRing {
  current: string;
  keys: KeyRingEntry[];
}

export interface LoadVaultOptions {
  /** Environment to read `EVERYAUTH_MASTER_KEY` from; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** Key ring file used when `EVERYAUTH_MASTER_KEY` is not set, typically `.everyauth/master.key`. */
  keyFile?: string;
}

export interface WriteKeyRingOptions {
  /** Replace an existing file. Off by default: replacing a key ring can make every stored value unreadable. */
  overwrite?: boolean;
}

/** The environment variable holding a bare key or a JSON key ring. */
export const MASTER_KEY_ENV = 'EVERYAUTH_MASTER_KEY';

const VERSION = 'ea1';
const PREFIX = `${VERSION}.`;
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Length of the unpadded base64url of a 12-byte IV. */
const IV_CHARS = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

const NODE_KEYGEN = "`node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"`";
const GENERATE_HINT = `generate a key with \`everyauth init\` or ${NODE_KEYGEN}`;

export class Vault {
  #keys!: ReadonlyMap<string, KeyObject>;
  #current!: string;
  #currentKey!: KeyObject;
  #ids!: readonly string[];
  /** Re-reads the key ring's source; set for a vault loaded from a key file. */
  readonly #reload?: () => KeyRing;
  #reloadedAt = 0;

  private constructor(keys: Map<string, KeyObject>, current: string, reload?: () => KeyRing) {
    this.#use(keys, current);
    this.#reload = reload;
  }

  #use(keys: Map<string, KeyObject>, current: string): void {
    const currentKey = keys.get(current);
    if (currentKey === undefined) throw new ConfigurationError(`The current key "${current}" is not loaded.`);
    this.#keys = keys;
    this.#current = current;
    this.#currentKey = currentKey;
    this.#ids = Object.freeze([...keys.keys()]);
  }

  /**
   * A vault holding every key of `ring`, sealing with `ring.current`. Throws ConfigurationError saying
   * what is wrong (never quoting key material); `source` names where the ring came from in that message.
   * With `reload`, a value sealed under a key this vault does not hold makes it read the ring again
   * (at most once a second): `everyauth keys rotate` in another process then needs no restart here.
   */
  static fromKeyRing(ring: KeyRing, source = 'The key ring', reload?: () => KeyRing): Vault {
    return new Vault(importKeyRing(ring, source), ring.current, reload);
  }

  /** Picks up keys added to the source since it was read; true when `kid` is now loaded. */
  #reloadFor(kid: string): boolean {
    if (!this.#reload || Date.now() - this.#reloadedAt < 1000) return false;
    this.#reloadedAt = Date.now();
    try {
      const ring = this.#reload();
      this.#use(importKeyRing(ring, 'The reloaded key ring'), ring.current);
    } catch {
      return false; // The ring in memory still works for everything it held.
    }
    return this.#keys.has(kid);
  }

  /** Id of the key new values are sealed with. */
  get currentKeyId(): string {
    return this.#current;
  }

  /** Ids of every loaded key, in key ring order. */
  get keyIds(): readonly string[] {
    return this.#ids;
  }

  /**
   * Encrypts `plaintext` (UTF-8) under the current key, bound to `aad` (e.g. `identity:<id>`).
   * Lone UTF-16 surrogates are not preserved (UTF-8 cannot carry them); `sealJson` output is always safe.
   */
  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const header = `${PREFIX}${this.#current}.`;
    const cipher = createCipheriv(ALGORITHM, this.#currentKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(header + aad, 'utf8'));
    const body = cipher.update(plaintext, 'utf8');
    cipher.final(); // GCM is a stream mode: nothing is buffered.
    const tag = cipher.getAuthTag();
    return `${header}${iv.toString('base64url')}.${Buffer.concat([body, tag], body.length + TAG_BYTES).toString('base64url')}`;
  }

  /**
   * Decrypts a value made by `seal` with the same `aad`. Throws DecryptionFailed whose message says
   * whether the value is malformed, names a key that is not loaded, or fails authentication.
   */
  open(sealed: string, aad: string): string {
    // Parse `ea1.<kid>.<iv>.<body>` with indexOf: no split array, no regex on the hot path.
    if (typeof sealed !== 'string' || !sealed.startsWith(PREFIX)) throw malformed(aad, 'it does not start with "ea1."');
    const kidEnd = sealed.indexOf('.', PREFIX.length);
    const ivEnd = kidEnd < 0 ? -1 : sealed.indexOf('.', kidEnd + 1);
    if (ivEnd < 0 || sealed.indexOf('.', ivEnd + 1) >= 0)
      throw malformed(aad, 'it does not have the four parts ea1.<kid>.<iv>.<ciphertext>');
    const kid = sealed.slice(PREFIX.length, kidEnd);
    const key = this.#keys.get(kid) ?? (this.#reloadFor(kid) ? this.#keys.get(kid) : undefined);
    if (key === undefined) {
      if (!KEY_ID.test(kid)) throw malformed(aad, 'its key id is not valid');
      throw new DecryptionFailed(
        `Cannot open the value for ${aad}: unknown key id "${kid}" (the key that sealed it is not loaded; loaded: ${this.#ids.join(', ')}). ` +
          'Add that key back to the key ring as a non-current key.',
      );
    }
    if (ivEnd - kidEnd - 1 !== IV_CHARS) throw malformed(aad, 'its IV is not 12 bytes');
    const iv = Buffer.from(sealed.slice(kidEnd + 1, ivEnd), 'base64url');
    const bodyChars = sealed.length - ivEnd - 1;
    const data = Buffer.from(sealed.slice(ivEnd + 1), 'base64url');
    // A decoder that skipped characters would return fewer bytes than the length implies.
    if (iv.length !== IV_BYTES || data.length !== Math.floor((bodyChars * 3) / 4) || bodyChars % 4 === 1) {
      throw malformed(aad, 'it is not valid base64url');
    }
    if (data.length < TAG_BYTES) throw malformed(aad, 'it is too short to hold an authentication tag');
    const split = data.length - TAG_BYTES;
    try {
      const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(data.subarray(split));
      decipher.setAAD(Buffer.from(sealed.slice(0, kidEnd + 1) + aad, 'utf8'));
      const out = decipher.update(data.subarray(0, split));
      decipher.final(); // Throws when the tag does not match; nothing is returned before this.
      return out.toString('utf8');
    } catch {
      // The cause is dropped on purpose: it adds nothing and must never drag data along.
      throw new DecryptionFailed(
        `Cannot open the value for ${aad}: authentication failed (wrong key, tampered value, or a value moved to another row).`,
      );
    }
  }

  /** The key id a sealed value names, without decrypting it. Throws DecryptionFailed when malformed. */
  keyIdOf(sealed: string): string {
    const kidEnd = typeof sealed === 'string' && sealed.startsWith(PREFIX) ? sealed.indexOf('.', PREFIX.length) : -1;
    const kid = kidEnd < 0 ? '' : sealed.slice(PREFIX.length, kidEnd);
    if (!KEY_ID.test(kid)) throw malformed(undefined, 'it is not of the form ea1.<kid>.<iv>.<ciphertext>');
    return kid;
  }

  /** `seal(JSON.stringify(value), aad)`. */
  sealJson(value: unknown, aad: string): string {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError('sealJson: the value cannot be represented as JSON.');
    return this.seal(json, aad);
  }

  /** `JSON.parse(open(sealed, aad))`; the type parameter is not checked. */
  openJson<T = unknown>(sealed: string, aad: string): T {
    const text = this.open(sealed, aad);
    try {
      return JSON.parse(text) as T;
    } catch {
      // JSON.parse messages quote the input; never pass them on.
      throw new DecryptionFailed(`Cannot open the value for ${aad}: malformed value (the decrypted value is not JSON).`);
    }
  }
}

function malformed(aad: string | undefined, why: string): DecryptionFailed {
  return new DecryptionFailed(`Cannot open ${aad === undefined ? 'the value' : `the value for ${aad}`}: malformed value (${why}).`);
}

// ---------------------------------------------------------------------------------------------------
// Keys and key rings

/** A fresh key: 32 random bytes as base64url, id of 8 random hex characters. */
export function generateKey(now: Date = new Date()): KeyRingEntry {
  return { id: randomBytes(4).toString('hex'), key: randomBytes(KEY_BYTES).toString('base64url'), createdAt: now.toISOString() };
}

/** A key ring holding one fresh key. */
export function createKeyRing(now: Date = new Date()): KeyRing {
  const entry = generateKey(now);
  return { current: entry.id, keys: [entry] };
}

/**
 * A new ring with a fresh key as current; the old keys stay for decryption (`everyauth keys rotate`).
 * `ring` is not modified.
 */
export function addKeyToRing(ring: KeyRing, now: Date = new Date()): KeyRing {
  importKeyRing(ring, 'The key ring');
  let entry = generateKey(now);
  while (ring.keys.some((k) => k.id === entry.id)) entry = generateKey(now);
  return { current: entry.id, keys: [...ring.keys.map((k) => ({ ...k })), entry] };
}

/** A new ring without key `id` (after every value sealed under it was re-sealed). The current key cannot be removed. */
export function removeKeyFromRing(ring: KeyRing, id: string): KeyRing {
  importKeyRing(ring, 'The key ring');
  if (id === ring.current)
    throw new ConfigurationError(`Key "${id}" is the current key and cannot be removed; rotate first (\`everyauth keys rotate\`).`);
  if (!ring.keys.some((k) => k.id === id))
    throw new ConfigurationError(`The key ring has no key "${id}" (it has ${ring.keys.map((k) => k.id).join(', ')}).`);
  return { current: ring.current, keys: ring.keys.filter((k) => k.id !== id).map((k) => ({ ...k })) };
}

/** The stable key id of a bare key: the first 8 hex characters of SHA-256 over its 32 bytes. */
export function keyIdForKey(key: string, source = 'The key'): string {
  const bytes = decodeKey(key, source);
  const id = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  bytes.fill(0);
  return id;
}

/**
 * Parses master key text (the value of `EVERYAUTH_MASTER_KEY` or a key file): a JSON key ring when it
 * starts with `{`, otherwise a bare base64url/base64 32-byte key, which becomes a one-key ring whose id is
 * `keyIdForKey(key)`. The result is validated.
 */
export function parseKeyMaterial(text: string, source: string): KeyRing {
  const trimmed = text.trim();
  if (trimmed === '')
    throw new ConfigurationError(`${source} is empty; it must hold a base64url 32-byte key or a JSON key ring: ${GENERATE_HINT}.`);
  if (trimmed.startsWith('{')) {
    let ring: unknown;
    try {
      ring = JSON.parse(trimmed);
    } catch {
      // No cause and no parser message: both would quote key material.
      throw new ConfigurationError(
        `${source} starts with "{" but is not valid JSON; it must be a JSON key ring {"current": "<id>", "keys": [{"id": "<id>", "key": "<base64url>"}]} or a bare base64url 32-byte key.`,
      );
    }
    importKeyRing(ring as KeyRing, source);
    return ring as KeyRing;
  }
  const bytes = decodeKey(trimmed, source);
  const id = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  const key = bytes.toString('base64url');
  bytes.fill(0);
  return { current: id, keys: [{ id, key }] };
}

/** Validates a ring and imports its keys; every message names the problem, never the key. */
function importKeyRing(ring: KeyRing, source: string): Map<string, KeyObject> {
  const fix = `Correct it, or ${GENERATE_HINT}.`;
  if (ring === null || typeof ring !== 'object' || Array.isArray(ring)) {
    throw new ConfigurationError(
      `${source} must be a JSON object {"current": "<id>", "keys": [{"id": "<id>", "key": "<base64url>"}]}. ${fix}`,
    );
  }
  if (!Array.isArray(ring.keys) || ring.keys.length === 0)
    throw new ConfigurationError(`${source} has no keys: "keys" must be a non-empty array. ${fix}`);
  if (typeof ring.current !== 'string')
    throw new ConfigurationError(`${source} has no "current" key id (a string naming the key to seal with). ${fix}`);
  const keys = new Map<string, KeyObject>();
  ring.keys.forEach((entry: unknown, index) => {
    if (entry === null || typeof entry !== 'object')
      throw new ConfigurationError(`${source}: keys[${index}] must be an object {"id", "key"}. ${fix}`);
    const { id, key, createdAt } = entry as Partial<Record<keyof KeyRingEntry, unknown>>;
    if (typeof id !== 'string' || !KEY_ID.test(id)) {
      throw new ConfigurationError(
        `${source}: keys[${index}] has ${typeof id === 'string' ? `an invalid id "${id.length > 40 ? `${id.slice(0, 40)}…` : id}"` : 'no id'}; ids are 1–32 characters of A–Z, a–z, 0–9, "_" and "-". ${fix}`,
      );
    }
    if (keys.has(id)) throw new ConfigurationError(`${source} has two keys with id "${id}"; key ids must be unique. ${fix}`);
    if (createdAt !== undefined && typeof createdAt !== 'string')
      throw new ConfigurationError(`${source}: key "${id}" has a "createdAt" that is not a string. ${fix}`);
    const bytes = decodeKey(key, `${source}: key "${id}"`);
    keys.set(id, createSecretKey(bytes));
    bytes.fill(0);
  });
  if (!keys.has(ring.current)) {
    throw new ConfigurationError(
      `${source} names current key "${ring.current}", but has no key with that id (it has ${[...keys.keys()].join(', ')}). ${fix}`,
    );
  }
  return keys;
}

/** Decodes base64url or base64 into exactly 32 bytes, or throws without quoting the input. */
function decodeKey(value: unknown, source: string): Buffer {
  if (typeof value !== 'string')
    throw new ConfigurationError(`${source} must be a string holding a base64url 32-byte key; ${GENERATE_HINT}.`);
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new ConfigurationError(
      `${source} looks like hex; it must be base64url-encoded 32 bytes. Convert it with \`node -e "console.log(Buffer.from(process.argv[1], 'hex').toString('base64url'))" <hex>\`, or ${GENERATE_HINT}.`,
    );
  }
  if (!BASE64.test(text)) {
    throw new ConfigurationError(
      `${source} is not base64url (it must be 32 bytes encoded with A–Z, a–z, 0–9, "-" and "_"); ${GENERATE_HINT}.`,
    );
  }
  const bytes = Buffer.from(text, 'base64'); // Node's base64 decoder also takes the URL-safe alphabet.
  if (bytes.length !== KEY_BYTES) {
    bytes.fill(0);
    throw new ConfigurationError(
      `${source} decodes to ${bytes.length} bytes; it must be exactly ${KEY_BYTES} bytes (43 base64url characters). ${capitalize(GENERATE_HINT)}.`,
    );
  }
  return bytes;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------------------------------------------
// Loading and storing

/**
 * The vault of this process. `EVERYAUTH_MASTER_KEY` wins when set (a bare base64url/base64 32-byte key or
 * a JSON key ring); otherwise `keyFile` is read, which must be private to its owner (mode 0600 or 0400
 * on POSIX). Throws ConfigurationError when neither provides a key.
 */
export async function loadVault(options: LoadVaultOptions = {}): Promise<Vault> {
  const env = options.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return Vault.fromKeyRing(parseKeyMaterial(fromEnv, MASTER_KEY_ENV), MASTER_KEY_ENV);
  }
  const missing =
    `No master key: set ${MASTER_KEY_ENV} to a base64url 32-byte key or a JSON key ring (generate a key with ${NODE_KEYGEN}), ` +
    (options.keyFile === undefined ? 'or give a key file path.' : `or create the key file ${options.keyFile} with \`everyauth init\`.`);
  if (options.keyFile === undefined) throw new ConfigurationError(missing);
  const keyFile = options.keyFile;
  const ring = await readKeyRing(keyFile, missing);
  return Vault.fromKeyRing(ring, `Key file ${keyFile}`, () => readKeyRingSync(keyFile));
}

/**
 * Reads and validates a key ring file (a JSON key ring, or a bare key). On POSIX the file must not be
 * accessible by group or others. `missingMessage` replaces the message for a file that does not exist.
 */
export async function readKeyRing(path: string, missingMessage?: string): Promise<KeyRing> {
  let handle;
  try {
    handle = await open(path, fsConstants.O_RDONLY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigurationError(
        missingMessage ?? `Key file ${path} does not exist; create it with \`everyauth init\`, or set ${MASTER_KEY_ENV}.`,
      );
    }
    throw new ConfigurationError(`Cannot read key file ${path} (${code ?? 'error'}); check its permissions.`, { cause: error });
  }
  try {
    checkKeyFile(await handle.stat(), path); // fstat of the opened file: no race with a swapped path.
    return parseKeyMaterial(await handle.readFile({ encoding: 'utf8' }), `Key file ${path}`);
  } finally {
    await handle.close();
  }
}

/** readKeyRing for the rare synchronous re-read after a rotation (Vault's reload). */
function readKeyRingSync(path: string): KeyRing {
  const fd = openSync(path, fsConstants.O_RDONLY);
  try {
    checkKeyFile(fstatSync(fd), path);
    return parseKeyMaterial(readFileSync(fd, 'utf8'), `Key file ${path}`);
  } finally {
    closeSync(fd);
  }
}

function checkKeyFile(info: Stats, path: string): void {
  if (!info.isFile()) throw new ConfigurationError(`Key file ${path} is not a regular file.`);
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    throw new ConfigurationError(
      `Key file ${path} is accessible by group or others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); it holds the master key. ` +
        `Run \`chmod 600 ${shellQuote(path)}\`.`,
    );
  }
}

/**
 * Writes `ring` (validated first) to `path` with mode 0600, atomically: a private temporary file in the
 * same directory is written, synced, then moved into place. Refuses to replace an existing file unless
 * `overwrite` is set. Creates the directory (mode 0700) when missing.
 */
export async function writeKeyRing(path: string, ring: KeyRing, options: WriteKeyRingOptions = {}): Promise<void> {
  importKeyRing(ring, 'The key ring');
  const refuse = () =>
    new ConfigurationError(
      `Key file ${path} already exists; refusing to overwrite it (values sealed under its keys would become unreadable). ` +
        'Use --force to replace it, or `everyauth keys rotate` to add a key to it.',
    );
  if (!options.overwrite && (await exists(path))) throw refuse();
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const text = `${JSON.stringify({ current: ring.current, keys: ring.keys }, null, 2)}\n`;
  let placed = false;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      if (process.platform !== 'win32') await handle.chmod(0o600); // Independent of the umask.
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.overwrite) {
      await rename(temp, path);
      placed = true;
    } else {
      // link() fails when the target exists, so a file created meanwhile is never replaced.
      try {
        await link(temp, path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw refuse();
        if (await exists(path)) throw refuse(); // Filesystems without hard links: best effort.
        await rename(temp, path);
        placed = true;
      }
    }
  } finally {
    if (!placed) await unlink(temp).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
