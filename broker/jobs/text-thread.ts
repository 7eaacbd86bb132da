/**
 * The body of a text-conversion worker thread (see text-threads.ts): converts one VOTable at a
 * time, its pieces arriving on the MessagePort of a `start` message, and sends back the text of
 * the pieces its share gives it. Nothing here touches the network, the database or a credential.
 */
import { parentPort } from 'node:worker_threads';
import { isConstellationError } from '../../registry/model/errors.js';
import { TextConversion } from './to-text.js';
import type { FromThread, StartMessage, ThreadError, ToThread } from './text-thread-protocol.js';

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

function convert({ port, format, share }: StartMessage): void {
  const conversion = new TextConversion(format, share);
  let pieces = 0;
  const post = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  // Sends a piece's text when it is this thread's (even none, so the pieces can be put in order).
  const send = (piece: number, parts: Uint8Array[]) => {
    if (conversion.writes(piece)) post({ kind: 'text', parts }, movable(parts));
  };
  port.on('message', (m: ToThread) => {
    try {
      if (m.kind === 'chunk') {
        const parts = conversion.push(m.bytes);
        send(pieces++, parts);
        return;
      }
      // A cancelled conversion ends at once; its text is not wanted.
      if (m.kind === 'end') send(pieces, conversion.end());
      post({ kind: 'done' });
    } catch (err) {
      post({ kind: 'failed', error: threadError(err) });
    }
    // Ended, failed or cancelled: closing the port frees this thread for the next conversion.
    port.close();
  });
}

parentPort?.on('message', (m: StartMessage) => convert(m));
// The pool hands this thread conversions once the converter is loaded.
parentPort?.postMessage('ready');
