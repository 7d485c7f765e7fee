import { Readable } from 'node:stream';

/** A request body that can be sent again (after a 401 or a 429), or a stream sent once. */
export interface OutgoingBody {
  /** The body for the next attempt. */
  next(): BodyInit | null;
  readonly replayable: boolean;
}

const isStream = (body: unknown): body is ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> =>
  body instanceof ReadableStream || (typeof body === 'object' && body !== null && Symbol.asyncIterator in body);

/**
 * Prepares a request body for sending. Bodies already in memory (string, bytes, Blob, form data)
 * are resent as they are. A stream is read up to `replayLimit` bytes: if it ends by then it is kept
 * and can be resent; if not, the part read and the rest go out as one stream, sent once, so a large
 * upload is never held in memory (and is not retried).
 */
export async function outgoingBody(body: BodyInit | null | undefined, replayLimit: number): Promise<OutgoingBody> {
  if (body === null || body === undefined) return { next: () => null, replayable: true };
  if (!isStream(body)) return { next: () => body, replayable: true };
  const stream = body instanceof ReadableStream ? body : (Readable.toWeb(Readable.from(body)) as ReadableStream<Uint8Array>);
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      const whole = Buffer.concat(head);
      return { next: () => whole, replayable: true };
    }
    head.push(value);
    size += value.byteLength;
    if (size > replayLimit) break;
  }
  let sent = false;
  const rest = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const chunk = head.shift();
      if (chunk) return controller.enqueue(chunk);
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return {
    next: () => {
      if (sent) throw new Error('a streamed request body cannot be sent twice');
      sent = true;
      return rest;
    },
    replayable: false,
  };
}
