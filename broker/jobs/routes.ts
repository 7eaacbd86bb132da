/** GET /results/:jobId — a job's (or a cross-match thread's) result (VOTable, CSV or JSON), as a download in the broker's own media type. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';
import { ANONYMOUS_IDENTITY, ownerOf, type Identity } from '../auth/identity.js';
import { jobResult, resultFormatOf } from './results.js';
import { replyStream } from './pass-through.js';
import type { JobService } from './service.js';
import { threadResult } from '../threads/result-stream.js';
import { registerThreadProvenanceRoute } from '../threads/provenance-route.js';

/** The owner whose results a request may read: its caller's (request.identity, set by the identity hook). */
function requestOwner(request: FastifyRequest): string {
  // The identity hook sets it on every request; a broker built without the hook serves anonymous callers.
  const identity: Identity | undefined = request.identity ?? undefined;
  return ownerOf(identity ?? ANONYMOUS_IDENTITY);
}

/**
 * Register the results route on `app` (over `jobs`, else the app's services once started);
 * errors are ConstellationErrors for the app's error handler. A result belongs to its job's
 * owner: anyone else gets NOT_FOUND, as for a job that does not exist. `ownerOf` names the
 * caller (default: the owner of `request.identity`).
 */
export function registerJobResultRoutes(app: FastifyInstance, jobs?: JobService, ownerOfRequest: (request: FastifyRequest) => string = requestOwner): void {
  app.get<{ Params: { jobId: string }; Querystring: { format?: string } }>('/results/:jobId', async (request, reply) => {
    // A result is the site's data: never sniffed into something else, never shown inline.
    reply.header('x-content-type-options', 'nosniff');
    const { jobId } = request.params;
    const query = request.query;
    const format = resultFormatOf(query.format, request.headers.accept);
    if (!format) throw new ConstellationError('INVALID_ARGUMENT', `format must be votable, csv or json, not "${query.format}"`);
    const abort = new AbortController();
    // The reply's socket, not the request's ('close' on a request fires once its body is read):
    // a client that leaves before the result is sent stops the read of the site's result.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const service = jobs ?? app.services.jobs;
    const owner = ownerOfRequest(request);
    // A cross-match thread's result is served here too (its id is a UUID no job has).
    const thread = jobs ? undefined : await app.services.threads.get(jobId, owner);
    const result = thread ? await threadResult(thread, format) : await jobResult(service, jobId, format, owner, abort.signal, service.resultFirstByteMs);
    const extension = format === 'votable' ? 'xml' : format;
    // The job id is a UUID (jobResult found it), so the file name needs no escaping.
    // A failure after the first byte can only cut the response short; the client sees a truncated body.
    return reply
      .type(result.contentType)
      .header('content-disposition', `attachment; filename="${jobId}.${extension}"`)
      .send(replyStream(result.body));
  });
  // A thread's provenance, beside its result (the app's services only: a bare job service has no threads).
  if (!jobs) registerThreadProvenanceRoute(app, ownerOfRequest);
}
