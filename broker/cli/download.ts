/**
 * A result streamed from the broker to a file or stdout, chunk by chunk, never held in memory.
 * A file is written under a temporary name beside it and renamed at the end, so an interrupted
 * download never leaves a truncated file under the name asked for.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { invalidArgument } from '../../registry/model/errors.js';

/** The result formats the broker serves (GET /results/:id?format=). */
export const RESULT_FORMATS = ['csv', 'votable', 'json'] as const;
/** One of RESULT_FORMATS. */
export type ResultFormat = (typeof RESULT_FORMATS)[number];

/** --format, else guessed from --out's extension (.vot/.xml votable, .json json), else csv. */
export function resultFormat(format: string | undefined, out: string | undefined): ResultFormat {
  const chosen = (format ?? (/\.(vot|xml)$/i.test(out ?? '') ? 'votable' : /\.json$/i.test(out ?? '') ? 'json' : 'csv')).toLowerCase();
  if (!(RESULT_FORMATS as readonly string[]).includes(chosen)) throw invalidArgument('--format', `must be csv, votable or json, not "${format}"`);
  return chosen as ResultFormat;
}

/** Stream `body` into `out` (or stdout when absent); resolves to the bytes written. */
export async function writeResult(body: Readable, out: string | undefined): Promise<number> {
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  if (!out) {
    await pipeline(body, count, stdoutKeptOpen());
    return bytes;
  }
  const temp = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString('hex')}.part`);
  try {
    await pipeline(body, count, createWriteStream(temp, { flags: 'wx' }));
    await rename(temp, out);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return bytes;
}

/**
 * stdout as a pipeline's end, without closing it, honouring its back-pressure. A reader that
 * went away (`| head`) ends the download quietly: that is what the user asked for.
 */
function stdoutKeptOpen(): Writable {
  let gone = false;
  let waiting: (() => void) | undefined;
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') return;
    gone = true;
    waiting?.();
  };
  process.stdout.on('error', onError);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (gone || process.stdout.write(chunk)) return done();
      const resume = () => {
        process.stdout.off('drain', resume);
        waiting = undefined;
        done();
      };
      waiting = resume;
      process.stdout.once('drain', resume);
    },
    final(done) {
      process.stdout.off('error', onError);
      done();
    },
  });
}
