/**
 * Kept results: a synchronous query's answer is read once from its site and kept in the
 * database in chunks, so /results serves it again (from any broker sharing the database) in
 * constant memory, until its retention runs out.
 */
import type pg from 'pg';
import type { SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { JobRow } from '../../registry/store/queries/jobs.js';
import { appendJobResultChunk, beginJobResult, completeJobResult, dropJobResult, jobResultChunk, jobResultHeader } from '../../registry/store/queries/job-results.js';

/** How a result is kept. */
export interface KeepOptions {
  maxBytes: number;
  retentionMs: number;
  chunkBytes: number;
  /** The site the result comes from (for messages). */
  site: string;
  /** The broker writing it: only while it holds the job (a broker whose lease another took writes nothing). */
  broker: string;
}

/**
 * Read `result` whole into the database under `jobId`: all of it or nothing. Over `maxBytes`
 * is UPSTREAM_TOO_LARGE (the site's request is abandoned at that byte); any failure leaves
 * nothing kept.
 */
export async function keepResult(pool: pg.Pool, jobId: string, result: SiteResult, options: KeepOptions): Promise<{ bytes: number; chunks: number }> {
  const takenOver = () => new ConstellationError('INTERNAL', `job ${jobId} was taken over (or placed) by another submit while ${options.site}'s answer was being kept; that one keeps it`);
  if (!(await beginJobResult(pool, jobId, options.broker, result.contentType, options.retentionMs))) throw takenOver();
  let bytes = 0;
  let seq = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let tail: Buffer = Buffer.alloc(0);
  const flush = async () => {
    if (pendingBytes === 0) return;
    if (!(await appendJobResultChunk(pool, jobId, options.broker, seq++, Buffer.concat(pending, pendingBytes)))) throw takenOver();
    pending = [];
    pendingBytes = 0;
  };
  try {
    for await (const chunk of result.body) {
      bytes += chunk.byteLength;
      if (bytes > options.maxBytes) {
        throw new ConstellationError('UPSTREAM_TOO_LARGE', `${options.site} sent a synchronous result over ${options.maxBytes} bytes (results.maxBytes); ask for fewer rows (TOP, maxrec)`);
      }
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      tail = lastBytes(tail, chunk);
      if (pendingBytes >= options.chunkBytes) await flush();
    }
    await flush();
    // An answer whose body ended cleanly but whose document did not (a site or proxy cutting it
    // short) must not become the job's result: the next candidate is asked instead.
    if (!endsVotable(tail)) {
      throw new ConstellationError('UPSTREAM_MALFORMED', `${options.site} ended its answer after ${bytes} bytes, before its VOTable ended (no closing </VOTABLE>): cut short`);
    }
    if (!(await completeJobResult(pool, jobId, options.broker, bytes, seq))) throw takenOver();
    return { bytes, chunks: seq };
  } catch (err) {
    // The write's own failure is what the caller must hear; an unfinished write left behind is removed by expireJobResults.
    await dropJobResult(pool, jobId, options.broker).catch(() => undefined);
    throw err;
  }
}

/**
 * A synchronous query's kept result, read chunk by chunk. One that expired (or was removed
 * while being read) is RESULT_EXPIRED saying when; one never kept is RESULT_EXPIRED too, since
 * the broker does not run a finished query a second time behind the caller's back.
 */
export async function keptResult(pool: pg.Pool, job: JobRow): Promise<SiteResult> {
  const header = await jobResultHeader(pool, job.id);
  if (!header || !header.complete) {
    throw new ConstellationError('RESULT_EXPIRED', `the result of job ${job.id} was not kept by the broker (it finished ${job.finishedAt?.toISOString() ?? 'earlier'}); submit the query again`);
  }
  const expiry = header.expiredAt ?? (header.expiresAt.getTime() <= Date.now() ? header.expiresAt : undefined);
  if (expiry) throw expired(job.id, expiry);
  return { contentType: header.contentType, body: chunks(pool, job.id, header.chunks, header.expiresAt) };
}

function expired(jobId: string, at: Date): ConstellationError {
  return new ConstellationError('RESULT_EXPIRED', `the result of job ${jobId} expired at ${at.toISOString()} (results.retentionDays) and is no longer kept; submit the query again`);
}

async function* chunks(pool: pg.Pool, jobId: string, count: number, expiresAt: Date): AsyncIterable<Uint8Array> {
  for (let seq = 0; seq < count; seq++) {
    const data = await jobResultChunk(pool, jobId, seq);
    if (!data) throw expired(jobId, expiresAt);
    yield data;
  }
}

/** How much of an answer's end is kept to see that its document ended. */
const TAIL_BYTES = 256;

/** The last TAIL_BYTES of `tail` followed by `chunk`. */
function lastBytes(tail: Buffer, chunk: Uint8Array): Buffer {
  const joined = Buffer.concat([tail, chunk.byteLength > TAIL_BYTES ? chunk.subarray(chunk.byteLength - TAIL_BYTES) : chunk]);
  return joined.byteLength > TAIL_BYTES ? joined.subarray(joined.byteLength - TAIL_BYTES) : joined;
}

/** Whether a document's last bytes close its VOTABLE element (with or without a namespace prefix; white space and comments may follow). */
function endsVotable(tail: Buffer): boolean {
  return /<\/(?:[A-Za-z_][\w.-]*:)?VOTABLE\s*>(?:\s|<!--(?:(?!-->)[\s\S])*-->)*$/.test(tail.toString('latin1'));
}
