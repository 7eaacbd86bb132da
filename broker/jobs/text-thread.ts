/**
 * The body of a text-conversion worker thread (see text-threads.ts): converts one VOTable at a
 * time, its pieces (or, in frames mode, its rows already read) arriving on the MessagePort of a
 * `start` message, and sends back the text of what it is given to write. Nothing here touches
 * the network, the database or a credential.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { FramesTextWriter } from '../../adapters/ivoa/votable/frames-text.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { TextConversion, type TextShare } from './to-text.js';
import type { FromThread, StartMessage, ThreadError, ToThread } from './text-thread-protocol.js';
import type { TextFormat } from '../../adapters/ivoa/votable/index.js';

/**
 * The buffers to move rather than copy: the converter hands over each buffer it wrote
 * (ByteSink.take starts a new one). A small one may be a slice of Node's shared Buffer pool,
 * which must never leave this thread, so it is copied.
 */
function movable(parts: Uint8Array[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const p of parts) if (p.buffer instanceof ArrayBuffer && p.buffer.byteLength > Buffer.poolSize && !out.includes(p.buffer)) out.push(p.buffer);
  return out;
}

function threadError(err: unknown): ThreadError {
  return isConstellationError(err)
    ? { kind: err.kind, message: err.message, violations: err.violations }
    : { kind: 'INTERNAL', message: `text conversion failed: ${err instanceof Error ? err.message : String(err)}`, violations: [] };
}

/** Runs one conversion's messages through `step` until it ends, fails or is cancelled. */
function serve(port: MessagePort, step: (m: ToThread, post: (message: FromThread, transfer?: ArrayBuffer[]) => void) => boolean): void {
  const post = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  port.on('message', (m: ToThread) => {
    try {
      if (m.kind !== 'cancel' && step(m, post)) return;
      // A cancelled conversion ends at once; its text is not wanted.
      post({ kind: 'done' });
    } catch (err) {
      post({ kind: 'failed', error: threadError(err) });
    }
    // Ended, failed or cancelled: closing the port frees this thread for the next conversion.
    port.close();
  });
}

/** Reads every piece, writes the rows of its share of them (text-threads.ts SharedConversion). */
function convertShare(port: MessagePort, format: TextFormat, share: TextShare): void {
  const conversion = new TextConversion(format, share);
  let pieces = 0;
  // Sends a piece's text when it is this thread's (even none, so the pieces can be put in order).
  const send = (piece: number, parts: Uint8Array[], post: (message: FromThread, transfer?: ArrayBuffer[]) => void) => {
    if (conversion.writes(piece)) post({ kind: 'text', parts }, movable(parts));
  };
  serve(port, (m, post) => {
    if (m.kind === 'chunk') {
      send(pieces++, conversion.push(m.bytes), post);
      return true;
    }
    if (m.kind === 'end') send(pieces, conversion.end(), post);
    return false;
  });
}

/** Writes the row batches it is given; only the first table's text is the result (framed-conversion.ts). */
function convertFrames(port: MessagePort, format: TextFormat): void {
  const writer = new FramesTextWriter(format);
  serve(port, (m, post) => {
    if (m.kind === 'data') {
      writer.begin(m.table, m.fields, m.binary2);
      return true;
    }
    if (m.kind === 'frames') {
      const f = m.frames;
      const text = writer.write(f);
      const parts = f.table === 0 && text.length > 0 ? [text] : [];
      // The rows' buffers go back with the text, to be filled with later rows: no new memory per batch.
      post({ kind: 'text', parts, spare: f }, [...movable(parts), f.bytes.buffer as ArrayBuffer, f.starts.buffer as ArrayBuffer]);
      return true;
    }
    return false;
  });
}

parentPort?.on('message', (m: StartMessage) => ('share' in m ? convertShare(m.port, m.format, m.share) : convertFrames(m.port, m.format)));
// The pool hands this thread conversions once the converter is loaded.
parentPort?.postMessage('ready');
