/**
 * A finished job's result, streamed from its site: the VOTable as the site sends it, or
 * converted on the fly to CSV or JSON, one batch of rows at a time (constant memory).
 */
import { Readable } from 'node:stream';
import type { SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { JobService } from './service.js';
import { checkedVotableStream, releaseBody } from './pass-through.js';
import { rootVerdict } from './votable-root.js';
import { textOnThread } from './text-threads.js';

/** The formats a result can be streamed in. */
export type ResultFormat = 'votable' | 'csv' | 'json';

/** A result stream with its media type. */
export interface ResultStream {
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

/** The format named by a `format` query value or an Accept header; undefined when neither names one. */
export function resultFormatOf(format: string | undefined, accept: string | undefined): ResultFormat | undefined {
  const f = format?.toLowerCase();
  if (f === 'votable' || f === 'xml' || f === 'vot') return 'votable';
  if (f === 'csv') return 'csv';
  if (f === 'json') return 'json';
  if (f !== undefined && f !== '') return undefined;
  if (!accept) return 'votable';
  if (/text\/csv/i.test(accept)) return 'csv';
  if (/application\/json/i.test(accept)) return 'json';
  return 'votable';
}

/** Media types the broker answers with: its own, whatever the site called its answer. */
export const RESULT_TYPES: Readonly<Record<ResultFormat, string>> = {
  votable: 'application/x-votable+xml',
  csv: 'text/csv; charset=utf-8; header=present',
  json: 'application/json; charset=utf-8',
};

/** How long /results waits for a site's first byte by default. */
export const FIRST_BYTE_TIMEOUT_MS = 15_000;

/**
 * Stream a COMPLETED job's result in `format` (owner checked when given). The first chunk is
 * read before this returns, so a result that fails before its first byte (a truncated or
 * malformed VOTable, a QUERY_STATUS error, an answer that is not a VOTable) throws its coded
 * error here, for the route to answer with a status and a JSON body; a later failure can only
 * cut the body short. A site that sends no byte within `firstByteMs` is UPSTREAM_TIMEOUT, and
 * its request is abandoned.
 */
export async function jobResult(
  jobs: JobService,
  id: string,
  format: ResultFormat,
  owner?: string,
  signal?: AbortSignal,
  firstByteMs: number = FIRST_BYTE_TIMEOUT_MS,
): Promise<ResultStream> {
  const job = await jobs.get(id, owner);
  if (!job) throw new ConstellationError('NOT_FOUND', `no job ${id}`);
  if (job.state !== 'COMPLETED') {
    throw new ConstellationError('NOT_FOUND', `job ${job.id} has no result: it is ${job.state}${job.errorMessage ? ` (${job.errorMessage})` : ''}`);
  }
  // The deadline aborts the site's request too; once the first byte is here only the client (or
  // the HTTP client's body timeout) ends the transfer.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), firstByteMs);
  const combined = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
  const timedOut = () => new ConstellationError('UPSTREAM_TIMEOUT', `${job.siteId ?? 'the site'} sent no byte of job ${job.id}'s result within ${firstByteMs / 1000} s`);
  try {
    const late = new Promise<never>((_resolve, reject) => deadline.signal.addEventListener('abort', () => reject(timedOut()), { once: true }));
    late.catch(() => {});
    const started = (async () => openResult(await jobs.result(job, combined), job.siteId ?? 'the site', format))();
    return await Promise.race([started, late]).catch((err: unknown) => {
      if (deadline.signal.aborted) {
        // The stream may still open after the deadline: release it.
        void started.then((s) => releaseBody(s.body), () => {});
        throw timedOut();
      }
      throw err;
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A site's answer as a VOTable, or UPSTREAM_MALFORMED before its first byte is passed on: the
 * document's root element must be VOTABLE, whatever media type the site gave it (sites mislabel
 * VOTables as text/plain or text/html). A site cannot make the broker serve HTML (or anything
 * else) from its origin; the answer carries only the broker's own media type.
 */
export function siteVotable(result: SiteResult, site: string): SiteResult {
  return { contentType: RESULT_TYPES.votable, body: checkRoot(result.body, siteLabel(result, site)) };
}

/** `site` as an error message names it, with the media type its answer was labelled with. */
function siteLabel(result: SiteResult, site: string): string {
  const label = (result.contentType ?? '').split(';')[0].trim().toLowerCase().slice(0, 80);
  return label ? `${site} (labelled ${label})` : site;
}

/**
 * A site's result opened in `format`, its first bytes read (a failure before them is thrown
 * here). A VOTable that arrives as a Node stream (a site's answer) is checked and handed on as
 * that same stream, for the reply to pipe; anything else is iterated.
 */
export async function openResult(result: SiteResult, site: string, format: ResultFormat): Promise<ResultStream> {
  if (format === 'votable' && result.body instanceof Readable) {
    return { contentType: RESULT_TYPES.votable, body: await checkedVotableStream(result.body, siteLabel(result, site)) };
  }
  return startStream(convertResult(siteVotable(result, site), format));
}

/**
 * `body` passed through once its root element is known to be VOTABLE. Chunks read while looking
 * are handed out first; after them every `next` is the source's own (no generator, no extra
 * promise per chunk): a result of a million rows is 2,400 chunks of 64 KiB, each of which would
 * otherwise pass through one more layer on its way to the client.
 */
function checkRoot(body: AsyncIterable<Uint8Array>, site: string): AsyncIterable<Uint8Array> {
  return { [Symbol.asyncIterator]: () => rootChecked(body[Symbol.asyncIterator](), site) };
}

function rootChecked(it: AsyncIterator<Uint8Array>, site: string): AsyncIterator<Uint8Array> {
  const held: Uint8Array[] = [];
  let checked = false;
  const prologue = async (): Promise<IteratorResult<Uint8Array>> => {
    let text = '';
    const decoder = new TextDecoder('utf-8', { fatal: false });
    let open = true;
    try {
      for (;;) {
        const next = await it.next();
        if (next.done) {
          open = false;
          const verdict = rootVerdict(text, site, true);
          throw verdict instanceof ConstellationError ? verdict : new ConstellationError('UPSTREAM_MALFORMED', `${site} sent a result that is not a VOTable`);
        }
        held.push(next.value);
        text += decoder.decode(next.value, { stream: true });
        const verdict = rootVerdict(text, site, false);
        if (verdict === 'more') continue;
        if (verdict !== 'votable') throw verdict;
        checked = true;
        const first = held.shift();
        return first === undefined ? it.next() : { value: first, done: false };
      }
    } catch (err) {
      // The site's request is released; a source that failed or ended has nothing to release.
      if (open) await it.return?.();
      throw err;
    }
  };
  return {
    next: () => {
      if (!checked) return prologue();
      const chunk = held.shift();
      return chunk === undefined ? it.next() : Promise.resolve({ value: chunk, done: false });
    },
    return: (value?: unknown) => (it.return ? it.return(value) : Promise.resolve({ value: undefined, done: true })),
  };
}

/** Reads `stream`'s first chunk now (throwing its error, if any) and returns the same stream. */
export async function startStream(stream: ResultStream): Promise<ResultStream> {
  const it = stream.body[Symbol.asyncIterator]();
  const first = await it.next();
  return { contentType: stream.contentType, body: { [Symbol.asyncIterator]: () => resumed(first, it) } };
}

/**
 * The first result, then the source's own `next` (no extra layer per chunk); a consumer that
 * stops early (the client left) releases the source, and with it the site's response.
 */
function resumed(first: IteratorResult<Uint8Array>, it: AsyncIterator<Uint8Array>): AsyncIterator<Uint8Array> {
  let pending: IteratorResult<Uint8Array> | undefined = first;
  let finished = first.done === true;
  return {
    next: () => {
      if (pending) {
        const r = pending;
        pending = undefined;
        return Promise.resolve(r);
      }
      if (finished) return Promise.resolve({ value: undefined, done: true });
      return it.next();
    },
    return: async (value?: unknown) => {
      pending = undefined;
      if (!finished && it.return) {
        finished = true;
        return it.return(value);
      }
      finished = true;
      return { value: undefined, done: true };
    },
  };
}

/** Convert a site's VOTable result to `format` as a stream, under the broker's own media type. */
export function convertResult(result: SiteResult, format: ResultFormat): ResultStream {
  if (format === 'votable') return { contentType: RESULT_TYPES.votable, body: result.body };
  return { contentType: RESULT_TYPES[format], body: textOnThread(result.body, format) };
}

/** RFC 4180 quoting, and cells as CSV text and as JSON (the converters' own rules, for callers that write single cells). */
export { csvField, cellText, cellJson } from '../../adapters/ivoa/votable/index.js';
