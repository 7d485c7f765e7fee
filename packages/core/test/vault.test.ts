import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, DecryptionFailed } from '../src/errors.js';
import {
  addKeyToRing,
  createKeyRing,
  generateKey,
  keyIdForKey,
  loadVault,
  parseKeyMaterial,
  readKeyRing,
  removeKeyFromRing,
  Vault,
  writeKeyRing,
  type KeyRing,
} from '../src/vault.js';

const posix = process.platform !== 'win32';

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

async function caughtAsync(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Flips one base64url character of the last part of a sealed value. */
function tamper(sealed: string, fromEnd = 5): string {
  const i = sealed.length - fromEnd;
  const c = sealed[i] === 'A' ? 'B' : 'A';
  return sealed.slice(0, i) + c + sealed.slice(i + 1);
}

describe('Vault seal/open', () => {
  const ring = createKeyRing();
  const vault = Vault.fromKeyRing(ring);
  const secret = 'ya29.a0-super-secret-access-token-ünïcødé-🔑';

  it('round-trips, including empty and large values', () => {
    for (const value of [secret, '', 'x'.repeat(100_000)]) {
      expect(vault.open(vault.seal(value, 'identity:1'), 'identity:1')).toBe(value);
    }
  });

  it('produces the compact versioned format with a fresh IV each time', () => {
    const a = vault.seal(secret, 'identity:1');
    const b = vault.seal(secret, 'identity:1');
    expect(a).not.toBe(b);
    const parts = a.split('.');
    expect(parts).toHaveLength(4);
    expect(parts[0]).toBe('ea1');
    expect(parts[1]).toBe(ring.current);
    expect(Buffer.from(parts[2]!, 'base64url')).toHaveLength(12);
    expect(Buffer.from(parts[3]!, 'base64url')).toHaveLength(Buffer.byteLength(secret) + 16);
    expect(a).toMatch(/^ea1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(a).not.toContain(secret);
  });

  it('fails to open with another associated data (a value moved to another row)', () => {
    const sealed = vault.seal(secret, 'identity:1');
    const error = caught(() => vault.open(sealed, 'identity:2'));
    expect(error).toBeInstanceOf(DecryptionFailed);
    expect(error.message).toContain('authentication failed');
    expect(error.message).toContain('identity:2');
    expect(error.message).not.toContain(secret);
  });

  it('fails to open a tampered ciphertext, IV or tag', () => {
    const sealed = vault.seal(secret, 'identity:1');
    const ivStart = sealed.indexOf('.', 4) + 1;
    const tamperedIv = sealed.slice(0, ivStart) + (sealed[ivStart] === 'A' ? 'B' : 'A') + sealed.slice(ivStart + 1);
    for (const bad of [tamper(sealed, 30), tamper(sealed, 2), tamperedIv]) {
      const error = caught(() => vault.open(bad, 'identity:1'));
      expect(error).toBeInstanceOf(DecryptionFailed);
      expect(error.message).toContain('authentication failed (wrong key, tampered value, or a value moved to another row)');
    }
  });

  it('fails to open under another key with the same id', () => {
    const other = Vault.fromKeyRing({ current: ring.current, keys: [{ id: ring.current, key: generateKey().key }] });
    const error = caught(() => other.open(vault.seal(secret, 'a'), 'a'));
    expect(error).toBeInstanceOf(DecryptionFailed);
    expect(error.message).toContain('authentication failed');
  });

  it('binds the key id: relabelling a value with another loaded key id fails', () => {
    const k = generateKey();
    // Same key bytes under two ids: swapping the id must still not open.
    const twin = Vault.fromKeyRing({
      current: 'a',
      keys: [
        { id: 'a', key: k.key },
        { id: 'b', key: k.key },
      ],
    });
    const sealed = twin.seal(secret, 'x');
    expect(() => twin.open(sealed.replace('ea1.a.', 'ea1.b.'), 'x')).toThrow(/authentication failed/);
  });

  it('names an unknown key id', () => {
    const sealed = vault.seal(secret, 'identity:1');
    const other = Vault.fromKeyRing(createKeyRing());
    const error = caught(() => other.open(sealed, 'identity:1'));
    expect(error).toBeInstanceOf(DecryptionFailed);
    expect(error.message).toContain(`unknown key id "${ring.current}"`);
    expect(error.message).toContain('the key that sealed it is not loaded');
    expect(error.message).toContain(other.currentKeyId);
  });

  it('reports malformed values as such', () => {
    const sealed = vault.seal(secret, 'identity:1');
    const [, kid, iv, body] = sealed.split('.');
    const cases = [
      '',
      'plain text',
      `ea2.${kid}.${iv}.${body}`,
      `ea1.${kid}.${iv}`,
      `ea1.${kid}.${iv}.${body}.extra`,
      `ea1.${kid}.${iv!.slice(1)}.${body}`,
      `ea1.${kid}.${iv}.${body!.slice(0, 10)}`,
      `ea1.${kid}.${iv}.${body!.slice(0, 20)}!!${body!.slice(22)}`,
      `ea1.${kid}.${iv}.${body}=`,
      `ea1.k!d.${iv}.${body}`,
      null as unknown as string,
    ];
    for (const bad of cases) {
      const error = caught(() => vault.open(bad, 'identity:1'));
      expect(error, String(bad)).toBeInstanceOf(DecryptionFailed);
      expect(error.message, String(bad)).toContain('malformed value');
      expect(error.message).not.toContain(secret);
    }
  });

  it('keyIdOf returns the key id without decrypting, and rejects malformed values', () => {
    expect(vault.keyIdOf(vault.seal(secret, 'x'))).toBe(ring.current);
    expect(vault.keyIdOf('ea1.other.AAAA.BBBB')).toBe('other');
    for (const bad of ['', 'ea1.', 'ea1..x.y', 'xx1.k.a.b', 'ea1.k$.a.b']) {
      expect(() => vault.keyIdOf(bad)).toThrow(DecryptionFailed);
    }
  });

  it('sealJson/openJson round-trip JSON', () => {
    const tokens = { accessToken: secret, refreshToken: 'r', expiresAt: 1_700_000_000, scopes: ['a', 'b'] };
    expect(vault.openJson(vault.sealJson(tokens, 'identity:1'), 'identity:1')).toEqual(tokens);
    const error = caught(() => vault.openJson(vault.seal(`not json ${secret}`, 'identity:1'), 'identity:1'));
    expect(error).toBeInstanceOf(DecryptionFailed);
    expect(error.message).toContain('malformed value');
    expect(error.message).not.toContain(secret);
    expect(() => vault.sealJson(undefined, 'x')).toThrow(TypeError);
  });

  it('does not expose key material when inspected or serialized', () => {
    const text = `${JSON.stringify(vault)} ${String(vault)} ${JSON.stringify(Object.entries(vault))}`;
    expect(text).not.toContain(ring.keys[0]!.key);
  });
});

describe('key rings', () => {
  it('generateKey makes 8-hex ids and 32-byte base64url keys', () => {
    const k = generateKey();
    expect(k.id).toMatch(/^[0-9a-f]{8}$/);
    expect(k.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(k.key, 'base64url')).toHaveLength(32);
    expect(generateKey().key).not.toBe(k.key);
  });

  it('old values still open after adding a key; new values use the new key', () => {
    const ring1 = createKeyRing();
    const v1 = Vault.fromKeyRing(ring1);
    const old = v1.seal('old', 'identity:1');
    const ring2 = addKeyToRing(ring1);
    expect(ring1.keys).toHaveLength(1); // not modified
    expect(ring2.keys).toHaveLength(2);
    expect(ring2.current).not.toBe(ring1.current);
    const v2 = Vault.fromKeyRing(ring2);
    expect(v2.currentKeyId).toBe(ring2.current);
    expect(v2.keyIds).toEqual([ring1.current, ring2.current]);
    expect(v2.open(old, 'identity:1')).toBe('old');
    const fresh = v2.seal('new', 'identity:1');
    expect(v2.keyIdOf(fresh)).toBe(ring2.current);
    expect(v2.keyIdOf(old)).toBe(ring1.current);
    // The old vault cannot open values under the new key and says why.
    expect(() => v1.open(fresh, 'identity:1')).toThrow(`unknown key id "${ring2.current}"`);
    // After re-sealing, the old key can be retired.
    const resealed = v2.seal(v2.open(old, 'identity:1'), 'identity:1');
    const v3 = Vault.fromKeyRing(removeKeyFromRing(ring2, ring1.current));
    expect(v3.keyIds).toEqual([ring2.current]);
    expect(v3.open(resealed, 'identity:1')).toBe('old');
    expect(() => removeKeyFromRing(ring2, ring2.current)).toThrow(/current key/);
  });

  it('accepts a ring with a non-newest current key', () => {
    const a = generateKey();
    const b = generateKey();
    const vault = Vault.fromKeyRing({ current: a.id, keys: [a, b] });
    expect(vault.keyIdOf(vault.seal('x', 'y'))).toBe(a.id);
  });

  const good = generateKey();
  const cases: Array<[string, unknown, RegExp]> = [
    [
      'a key too short',
      { current: 'k1', keys: [{ id: 'k1', key: randomBytes(31).toString('base64url') }] },
      /decodes to 31 bytes; it must be exactly 32 bytes/,
    ],
    ['a key too long', { current: 'k1', keys: [{ id: 'k1', key: randomBytes(33).toString('base64url') }] }, /decodes to 33 bytes/],
    ['a key that is not base64', { current: 'k1', keys: [{ id: 'k1', key: `${good.key.slice(0, 40)}!@#` }] }, /is not base64url/],
    ['a hex key', { current: 'k1', keys: [{ id: 'k1', key: randomBytes(32).toString('hex') }] }, /looks like hex/],
    ['a key that is not a string', { current: 'k1', keys: [{ id: 'k1', key: 42 }] }, /must be a string/],
    [
      'duplicate ids',
      {
        current: 'k1',
        keys: [
          { id: 'k1', key: good.key },
          { id: 'k1', key: generateKey().key },
        ],
      },
      /two keys with id "k1"/,
    ],
    [
      'a missing current key',
      { current: 'k2', keys: [{ id: 'k1', key: good.key }] },
      /current key "k2", but has no key with that id \(it has k1\)/,
    ],
    ['no current', { keys: [{ id: 'k1', key: good.key }] }, /no "current"/],
    ['no keys', { current: 'k1', keys: [] }, /no keys/],
    ['an invalid id', { current: 'k.1', keys: [{ id: 'k.1', key: good.key }] }, /invalid id "k\.1"/],
    ['an id too long', { current: 'k'.repeat(33), keys: [{ id: 'k'.repeat(33), key: good.key }] }, /invalid id/],
    ['not an object', 'nope', /must be a JSON object/],
  ];
  for (const [name, ring, message] of cases) {
    it(`rejects ${name} with a ConfigurationError that quotes no key`, () => {
      const error = caught(() => Vault.fromKeyRing(ring as KeyRing));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/everyauth init|Correct it/);
      for (const k of (ring as KeyRing).keys ?? []) {
        if (typeof k.key === 'string') expect(error.message).not.toContain(k.key);
      }
      expect(error.message).not.toContain(good.key);
    });
  }
});

describe('parseKeyMaterial and loadVault from EVERYAUTH_MASTER_KEY', () => {
  it('takes a single base64url key with a stable derived id', async () => {
    const key = randomBytes(32);
    const env = { EVERYAUTH_MASTER_KEY: key.toString('base64url') };
    const a = await loadVault({ env });
    const b = await loadVault({ env: { EVERYAUTH_MASTER_KEY: ` ${key.toString('base64')}\n` } }); // base64, padded, whitespace
    const expected = createHash('sha256').update(key).digest('hex').slice(0, 8);
    expect(a.currentKeyId).toBe(expected);
    expect(b.currentKeyId).toBe(expected);
    expect(keyIdForKey(key.toString('base64url'))).toBe(expected);
    expect(b.open(a.seal('hello', 'identity:1'), 'identity:1')).toBe('hello');
  });

  it('takes a JSON key ring', async () => {
    const ring = addKeyToRing(createKeyRing());
    const vault = await loadVault({ env: { EVERYAUTH_MASTER_KEY: JSON.stringify(ring) } });
    expect(vault.currentKeyId).toBe(ring.current);
    expect(vault.keyIds).toEqual(ring.keys.map((k) => k.id));
  });

  it('prefers the environment over the key file', async () => {
    const key = generateKey().key;
    const vault = await loadVault({ env: { EVERYAUTH_MASTER_KEY: key }, keyFile: '/nonexistent/master.key' });
    expect(vault.currentKeyId).toBe(keyIdForKey(key));
  });

  it('rejects a wrong-length key, naming the variable and how to generate one, without the key', async () => {
    const key = randomBytes(24).toString('base64url');
    const error = await caughtAsync(() => loadVault({ env: { EVERYAUTH_MASTER_KEY: key } }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('EVERYAUTH_MASTER_KEY decodes to 24 bytes');
    expect(error.message).toContain('everyauth init');
    expect(error.message).toContain('node -e');
    expect(error.message).not.toContain(key);
  });

  it('rejects broken JSON without quoting it', () => {
    const key = generateKey().key;
    const text = `{"current": "k1", "keys": [{"id": "k1", "key": "${key}"}]`;
    const error = caught(() => parseKeyMaterial(text, 'EVERYAUTH_MASTER_KEY'));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('not valid JSON');
    expect(error.message).not.toContain(key);
    expect(error.message).not.toContain(key.slice(0, 10));
    expect((error as Error & { cause?: unknown }).cause).toBeUndefined();
  });

  it('without env or key file, says both ways to provide a key', async () => {
    for (const options of [{ env: {} }, { env: { EVERYAUTH_MASTER_KEY: '  ' } }]) {
      const error = await caughtAsync(() => loadVault(options));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toContain('EVERYAUTH_MASTER_KEY');
      expect(error.message).toContain('key file');
    }
  });
});

describe('key files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'everyauth-vault-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writeKeyRing writes mode 0600 atomically and loadVault reads it', async () => {
    const path = join(dir, '.everyauth', 'master.key');
    const ring = createKeyRing();
    await writeKeyRing(path, ring);
    if (posix) expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(ring);
    expect((await readdir(join(dir, '.everyauth'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const vault = await loadVault({ env: {}, keyFile: path });
    expect(vault.currentKeyId).toBe(ring.current);
    expect(await readKeyRing(path)).toEqual(ring);
  });

  it('writeKeyRing refuses to overwrite unless asked', async () => {
    const path = join(dir, 'master.key');
    const first = createKeyRing();
    await writeKeyRing(path, first);
    const error = await caughtAsync(() => writeKeyRing(path, createKeyRing()));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('already exists');
    expect(error.message).toContain('--force');
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(first);
    const rotated = addKeyToRing(first);
    await writeKeyRing(path, rotated, { overwrite: true });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(rotated);
    if (posix) expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['master.key']);
  });

  it('writeKeyRing refuses an invalid ring and writes nothing', async () => {
    const path = join(dir, 'master.key');
    const bad = { current: 'k1', keys: [{ id: 'k1', key: 'short' }] };
    await expect(writeKeyRing(path, bad)).rejects.toBeInstanceOf(ConfigurationError);
    expect(await readdir(dir)).toEqual([]);
  });

  it.runIf(posix)('refuses a key file readable by group or others, telling how to fix it', async () => {
    const path = join(dir, 'master.key');
    const ring = createKeyRing();
    await writeFile(path, JSON.stringify(ring), { mode: 0o600 });
    await chmod(path, 0o644);
    const error = await caughtAsync(() => loadVault({ env: {}, keyFile: path }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('0644');
    expect(error.message).toContain(`chmod 600 ${path}`);
    expect(error.message).not.toContain(ring.keys[0]!.key);
    await chmod(path, 0o600);
    expect((await loadVault({ env: {}, keyFile: path })).currentKeyId).toBe(ring.current);
    await chmod(path, 0o400);
    expect((await loadVault({ env: {}, keyFile: path })).currentKeyId).toBe(ring.current);
  });

  it('a missing key file explains both ways to provide a key', async () => {
    const path = join(dir, 'master.key');
    const error = await caughtAsync(() => loadVault({ env: {}, keyFile: path }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('EVERYAUTH_MASTER_KEY');
    expect(error.message).toContain(path);
    expect(error.message).toContain('everyauth init');
  });

  it('a key file with a bad key names the file and not the key', async () => {
    const path = join(dir, 'master.key');
    const key = randomBytes(16).toString('base64url');
    await writeFile(path, JSON.stringify({ current: 'k1', keys: [{ id: 'k1', key }] }), { mode: 0o600 });
    const error = await caughtAsync(() => loadVault({ env: {}, keyFile: path }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain(`Key file ${path}: key "k1" decodes to 16 bytes`);
    expect(error.message).not.toContain(key);
  });
});

describe('a key rotated by another process', () => {
  it('is picked up from the key file when a value names it, and new values use it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'everyauth-vault-reload-'));
    try {
      const path = join(dir, 'master.key');
      const first = createKeyRing();
      await writeKeyRing(path, first);
      const running = await loadVault({ env: {}, keyFile: path });

      // `everyauth keys rotate` elsewhere: a new current key in the file, values re-sealed under it.
      const rotated = addKeyToRing(first);
      await writeKeyRing(path, rotated, { overwrite: true });
      const resealed = Vault.fromKeyRing(rotated).seal('token', 'identity:a');

      expect(running.open(resealed, 'identity:a')).toBe('token');
      expect(running.currentKeyId).toBe(rotated.current);
      expect(running.keyIdOf(running.seal('x', 'identity:b'))).toBe(rotated.current);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a vault given its key by value does not look anywhere else', () => {
    const vault = Vault.fromKeyRing(createKeyRing());
    const other = Vault.fromKeyRing(createKeyRing()).seal('token', 'identity:a');
    expect(() => vault.open(other, 'identity:a')).toThrow(/unknown key id/);
  });
});
