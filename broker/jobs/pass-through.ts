/**
 * The VOTable pass-through on a Node stream (a site's answer as adapters/http.ts streams it):
 * its root element is checked by reading its first pieces, which are put back, and the same
 * stream is then handed to the response to pipe. No generator, no promise per piece: a
 * million-row result is 2,400 pieces of 64 KiB.
 */
import { Readable } from 'node:stream';
import { ConstellationError } from '../../registry/model/errors.js';
import { rootVerdict } from './votable-root.js';

/**
 * `stream` once its root element is known to be VOTABLE, with every byte read to know it put
 * back; UPSTREAM_MALFORMED (and the stream destroyed, so its site's request is released) when it
 * is not a VOTable. A failure of the stream before that is thrown as it is.
 */
export async function checkedVotableStream(stream: Readable, site: string): Promise<Readable> {
  const held: Buffer[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let text = '';
  try {
    for (;;) {
      const chunk = await nextChunk(stream);
      if (chunk !== undefined) {
        held.push(chunk);
        text += decoder.decode(chunk, { stream: true });
      }
      const verdict = rootVerdict(text, site, chunk === undefined);
      if (verdict === 'votable') break;
      if (verdict !== 'more') throw verdict;
    }
  } catch (err) {
    // Destroyed without an error: a refusal here is not the site connection's failure.
    stream.destroy();
    throw err;
  }
  stream.unshift(held.length === 1 ? held[0] : Buffer.concat(held));
  return stream;
}

/** The next piece of `stream` (read in paused mode), undefined at its end; its error, or its closing early, is thrown. */
export function nextChunk(stream: Readable): Promise<Buffer | undefined> {
  const now = readNow(stream);
  if (now !== null) return Promise.resolve(now);
  if (stream.readableEnded) return Promise.resolve(undefined);
  if (stream.errored) return Promise.reject(stream.errored);
  if (stream.destroyed) return Promise.reject(closedEarly());
  return new Promise((resolve, reject) => {
    const done = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      try {
        chunk = readNow(stream);
      } catch (err) {
        done();
        reject(err);
        return;
      }
      if (chunk === null) return; // the end: 'end' follows
      done();
      resolve(chunk);
    };
    const onEnd = () => {
      done();
      resolve(undefined);
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      done();
      reject(stream.errored ?? closedEarly());
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}

/**
 * What `stream` holds now as one Buffer, or null. Exactly what is buffered is asked for: a bare
 * read() that empties an ended stream schedules its 'end' at once, before the bytes read could
 * be put back.
 */
function readNow(stream: Readable): Buffer | null {
  const buffered = stream.readableLength;
  const chunk: unknown = buffered > 0 ? stream.read(buffered) : stream.read();
  if (chunk === null) return null;
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new ConstellationError('INTERNAL', 'a result stream gave something that is not bytes');
}

function closedEarly(): ConstellationError {
  return new ConstellationError('UPSTREAM_UNAVAILABLE', 'the result stream closed before its end');
}

/** Let go of a result body nobody will read: a stream is destroyed, an iterable's iterator returned (releasing its site's request). */
export async function releaseBody(body: AsyncIterable<Uint8Array>): Promise<void> {
  if (body instanceof Readable) body.destroy();
  else await body[Symbol.asyncIterator]().return?.();
}

/** A result body as the stream a reply sends: a Node stream as it is (piped, no layer per piece), any other iterable through Readable.from. */
export function replyStream(body: AsyncIterable<Uint8Array>): Readable {
  return body instanceof Readable ? body : Readable.from(body, { objectMode: false });
}
