/** The messages between the broker's thread and a text-conversion worker thread. */
import type { MessagePort } from 'node:worker_threads';
import type { FieldMeta, TextFormat } from '../../adapters/ivoa/votable/index.js';
import type { RowFrames } from '../../adapters/ivoa/votable/row-frames.js';
import type { ErrorKind, Violation } from '../../registry/model/errors.js';
import type { TextShare } from './to-text.js';

/**
 * Begins one conversion; everything else about it goes over `port`. With a share the thread
 * reads the VOTable's pieces itself and writes its share of them (`chunk` messages); with
 * `frames` it is given rows the broker's thread has read (`data` and `frames` messages).
 */
export type StartMessage = StartOptions & { port: MessagePort };

/** A StartMessage but its port. */
export type StartOptions = { format: TextFormat } & ({ share: TextShare } | { frames: true });

/**
 * The broker's thread to the worker: a piece of the VOTable, a binary data section's start or a
 * batch of its rows (frames mode), the end, or a stop.
 */
export type ToThread =
  | { kind: 'chunk'; bytes: Uint8Array }
  | { kind: 'data'; table: number; fields: FieldMeta[]; binary2: boolean }
  | { kind: 'frames'; frames: RowFrames }
  | { kind: 'end' }
  | { kind: 'cancel' };

/** A ConstellationError as it crosses threads (its cause stays behind). */
export interface ThreadError {
  kind: ErrorKind;
  message: string;
  violations: Violation[];
}

/**
 * The worker to the broker's thread: the text of each piece of its share, or of each batch of
 * rows (frames mode), in order (sent even when empty: it says how far the worker got), the end
 * of its part, or the error that ended it.
 */
export type FromThread =
  /** `spare`: in frames mode, the batch's own buffers, given back to be filled again (row-frames.ts FrameSpares). */
  | { kind: 'text'; parts: Uint8Array[]; spare?: RowFrames }
  | { kind: 'done' }
  | { kind: 'failed'; error: ThreadError };
