/** The messages between the broker's thread and a text-conversion worker thread. */
import type { MessagePort } from 'node:worker_threads';
import type { TextFormat } from '../../adapters/ivoa/votable/index.js';
import type { ErrorKind, Violation } from '../../registry/model/errors.js';
import type { TextShare } from './to-text.js';

/** Begins one conversion (this thread's share of it); everything else about it goes over `port`. */
export interface StartMessage {
  format: TextFormat;
  share: TextShare;
  port: MessagePort;
}

/** The broker's thread to the worker: a piece of the VOTable, its end, or a stop. */
export type ToThread = { kind: 'chunk'; bytes: Uint8Array } | { kind: 'end' } | { kind: 'cancel' };

/** A ConstellationError as it crosses threads (its cause stays behind). */
export interface ThreadError {
  kind: ErrorKind;
  message: string;
  violations: Violation[];
}

/**
 * The worker to the broker's thread: the text of each piece of its share, in order (sent even when
 * empty: it says how far the worker got), the end of its part, or the error that ended it.
 */
export type FromThread =
  | { kind: 'text'; parts: Uint8Array[] }
  | { kind: 'done' }
  | { kind: 'failed'; error: ThreadError };
