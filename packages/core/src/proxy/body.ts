/** What the proxy accepts as a body: fetch's own kinds, or an async iterable of bytes (a Node stream). */
export type Body = BodyInit | AsyncIterable<Uint8Array>;

/** A request body that can be sent again (after a 401 or a 429), or a stream sent once. */
export interface OutgoingBody {
  /** The body for the next attempt: bytes, or an async iterable of them that undici writes with backpressure. */
  next(): Uint8Array | AsyncIterable<Uint8Array> | null;
  readonly replayable: boolean;
  /** The Content-Type fetch would give this kind of body (text, form, multipart, Blob), when the caller sets none. */
  readonly contentType?: string;
}

type ByteStream = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

const isStream = (body: unknown): body is ByteStream =>
  body instanceof ReadableStream || (typeof body === 'object' && body !== null && Symbol.asyncIterator in body);

/** The chunks of a web or Node stream, read one at a time as they are consumed. */
export function chunksOf(stream: ByteStream): AsyncIterator<Uint8Array> {
  return (stream as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
}

/**
 * A body for Node's fetch: a web stream goes in as an async iterable, because given a ReadableStream
 * undici's fetch reads it ahead without bound (a 256 MiB upload held 260 MiB in bench:proxy).
 */
export function unbuffered(body: Body | null | undefined): Body | null | undefined {
  if (!(body instanceof ReadableStream)) return body;
  const stream = body as ReadableStream<Uint8Array>;
  return (async function* () {
    yield* stream as unknown as AsyncIterable<Uint8Array>;
  })();
}

/**
 * Prepares a request body for sending. Bodies already in memory (string, bytes, Blob, form data)
 * are resent as they are. A stream is read up to `replayLimit` bytes: if it ends by then it is kept
 * and can be resent; if not, the part read and the rest go out as one stream, sent once, so a large
 * upload is never held in memory (and is not retried).
 */
export async function outgoingBody(body: Body | null | undefined, replayLimit: number): Promise<OutgoingBody> {
  if (body === null || body === undefined) return { next: () => null, replayable: true };
  if (!isStream(body)) {
    // In memory already (a Blob aside): fetch's own rules turn it into bytes and a content type.
    const normalized = new Response(body);
    const bytes = new Uint8Array(await normalized.arrayBuffer());
    return { next: () => bytes, replayable: true, contentType: normalized.headers.get('content-type') ?? undefined };
  }
  const chunks = chunksOf(body);
  const head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await chunks.next();
    if (done) {
      const whole = Buffer.concat(head);
      return { next: () => whole, replayable: true };
    }
    head.push(value);
    size += value.byteLength;
    if (size > replayLimit) break;
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    let finished = false;
    try {
      yield* head.splice(0);
      for (;;) {
        const { done, value } = await chunks.next();
        if (done) break;
        yield value;
      }
      finished = true;
    } finally {
      // The request failed or was aborted midway: let the source know (it may close its socket).
      if (!finished) await chunks.return?.();
    }
  }
  let sent = false;
  return {
    next: () => {
      if (sent) throw new Error('a streamed request body cannot be sent twice');
      sent = true;
      return rest();
    },
    replayable: false,
  };
}
