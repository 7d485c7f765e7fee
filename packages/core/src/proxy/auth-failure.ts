import { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { Dispatcher } from 'undici';
import type { AuthFailure } from '../catalog/schema.js';
import { readPath } from '../oauth/token-set.js';
import { chunksOf } from './body.js';

/** The most of a body read to look for a declared auth failure; a larger one is passed on as it comes. */
export const AUTH_FAILURE_BODY_LIMIT = 64 * 1024;

/** `application/json` and the `+json` structured suffix (RFC 6839 §3.1). */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

/** Content codings the check can undo, each bounded to the same limit (a small gzip body cannot inflate without bound). */
const DECODE: Record<string, (bytes: Buffer) => Buffer> = {
  identity: (bytes) => bytes,
  gzip: (bytes) => gunzipSync(bytes, { maxOutputLength: AUTH_FAILURE_BODY_LIMIT }),
  'x-gzip': (bytes) => gunzipSync(bytes, { maxOutputLength: AUTH_FAILURE_BODY_LIMIT }),
  deflate: (bytes) => inflateSync(bytes, { maxOutputLength: AUTH_FAILURE_BODY_LIMIT }),
  br: (bytes) => brotliDecompressSync(bytes, { maxOutputLength: AUTH_FAILURE_BODY_LIMIT }),
};

const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value) ?? '';

/**
 * Whether the API refused the credential: a 401 (RFC 6750 §3.1 `invalid_token`), or the failure
 * its provider declares (`api.authFailure`: a status and a JSON error field). For the latter it
 * reads a JSON body of a declared status, at most 64 KiB of it, and puts what it read back in
 * front of the rest, so a body that is no auth failure reaches the caller byte for byte.
 */
export async function credentialRefused(response: Dispatcher.ResponseData, declared: AuthFailure | undefined): Promise<boolean> {
  if (response.statusCode === 401) return true;
  if (!declared?.status.includes(response.statusCode) || !JSON_TYPE.test(one(response.headers['content-type']))) return false;
  const decode = DECODE[one(response.headers['content-encoding']).trim().toLowerCase() || 'identity'];
  if (!decode || Number(one(response.headers['content-length'])) > AUTH_FAILURE_BODY_LIMIT) return false;
  const source = response.body;
  const chunks = chunksOf(source);
  const head: Uint8Array[] = [];
  let size = 0;
  let complete = false;
  while (size <= AUTH_FAILURE_BODY_LIMIT) {
    const { done, value } = await chunks.next();
    if (done) {
      complete = true;
      break;
    }
    head.push(value);
    size += value.byteLength;
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    yield* head;
    for (;;) {
      const { done, value } = await chunks.next();
      if (done) return;
      yield value;
    }
  }
  // The proxy iterates the body or dumps it; a Readable with dump() stands in for undici's.
  const restored: Readable & { dump?: () => Promise<void> } = Readable.from(replay(), { objectMode: false });
  restored.dump = async () => {
    restored.destroy();
    await chunks.return?.();
  };
  response.body = restored as unknown as Dispatcher.ResponseData['body'];
  if (!complete) return false;
  try {
    const error = readPath(JSON.parse(decode(Buffer.concat(head)).toString('utf8')), declared.field);
    return (typeof error === 'string' || typeof error === 'number') && declared.values.includes(error);
  } catch {
    return false; // not JSON after all, or larger once decoded: not the declared failure
  }
}
