/**
 * Running a checked TAP query: a local one here, a federation one as an ordinary broker job
 * (planned and submitted exactly as GraphQL submitQuery does, with the caller's site
 * credentials), followed to its end and read back in the format asked for.
 */
import { writeVOTable } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError, ErrorCodes } from '../../registry/model/errors.js';
import { recordJobEvent, type JobRow } from '../../registry/store/queries/jobs.js';
import { ANONYMOUS_IDENTITY, isAdmin, groupsOf, ownerOf, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import { credentialedCandidates, keepJobCredentials } from '../jobs/job-credentials.js';
import { jobResult } from '../jobs/results.js';
import { isTerminal } from '../jobs/state.js';
import { convertTo } from './formats.js';
import { runLocalQuery } from './local-schema.js';
import type { TapQueryRequest } from './request.js';
import { routeTapQuery } from './route.js';
import type { CrossSiteJoin } from './crossmatch-join.js';
import { startJoinThread } from './crossmatch-run.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import { LOCAL_SCHEMAS } from './schemas.js';
import { uploadSchema } from './upload-schema.js';
import { follow, type Followed, type Warn } from './wait.js';

/** A result as bytes in the asked format, with its media type. */
export interface TapAnswer {
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

/** What a query became: answered here at once, a broker job, or (a positional join across sites) a cross-match thread. */
export type Started = { kind: 'local'; answer: () => Promise<TapAnswer> } | { kind: 'job'; job: JobRow } | { kind: 'thread'; thread: ThreadRow; join: CrossSiteJoin };

/** The caller's identity, anonymous when the request has none. */
export function identityOf(identity: Identity | undefined | null): Identity {
  return identity ?? ANONYMOUS_IDENTITY;
}

/** Check, route and start `req` for `identity` (`waiting`: a /tap/sync caller waits for it; `baseUrl`: this /tap as the caller reached it); nothing reaches a site unless every check passed. */
export async function startQuery(services: Services, req: TapQueryRequest, identity: Identity, waiting = false, baseUrl?: string): Promise<Started> {
  const visibility = isAdmin(identity) ? 'all' : groupsOf(identity);
  const route = await routeTapQuery(req.query, req.uploads, req.maxrec, {
    snapshot: services.planner.snapshot,
    db: services.pool,
    caller: { groups: groupsOf(identity) },
    visibility,
    locals: LOCAL_SCHEMAS,
  }, waiting);
  if (route.kind === 'local') {
    return {
      kind: 'local',
      answer: async () => {
        const result = await runLocalQuery(services.pool, [...LOCAL_SCHEMAS, uploadSchema(req.uploads)], req.query, { db: services.pool, visibility, ...(baseUrl ? { baseUrl } : {}) }, req.maxrec);
        const votable = writeVOTable({ fields: result.fields }, result.rows, {
          serialization: req.format.serialization ?? 'TABLEDATA',
          infos: [{ name: 'QUERY_STATUS', value: 'OK' }],
          trailingInfos: result.overflow ? [{ name: 'QUERY_STATUS', value: 'OVERFLOW' }] : [],
        });
        return { contentType: req.format.contentType, body: req.format.kind === 'votable' ? votable : convertTo(votable, req.format) };
      },
    };
  }
  if (identity.kind === 'anonymous' && services.config.identity?.anonymous === 'read') {
    throw new ConstellationError('UNAUTHENTICATED', 'this federation runs queries only for callers who are logged in (identity.anonymous: read); send a bearer token');
  }
  if (route.kind === 'crossmatch') {
    // Sync follows the thread to its end; an async TAP job links to it (job-store.ts linkTapThread).
    return { kind: 'thread', thread: await startJoinThread(services, route.join, identity), join: route.join };
  }
  const resolved = await credentialedCandidates(services.config, identity, route.candidates, { db: services.pool, issuer: services.identity?.provider, keys: services.identity?.keys });
  const format = req.format.kind === 'csv' || req.format.kind === 'json' ? req.format.kind : 'votable';
  const job = await services.jobs.submit({
    kind: 'QUERY',
    owner: ownerOf(identity),
    request: { adql: req.adql, maxrec: req.maxrec, format, via: 'tap', ...(req.uploads.length > 0 ? { upload: req.uploads[0].name } : {}) },
    candidates: resolved.candidates,
    plan: route.plan,
    beforeDispatch: async (created) => {
      await keepJobCredentials(services.pool, services.identity?.keys, created.id, resolved.credentials);
      for (const r of resolved.refusals) {
        await recordJobEvent(services.pool, { jobId: created.id, state: created.state, siteId: r.siteId, errorCode: ErrorCodes[r.kind].code, message: `${r.siteId}: skipped: ${r.message}` });
      }
    },
  });
  return { kind: 'job', job };
}

/** A broker job followed (follow, wait.ts): this broker's changes to it, and it read again. */
export function followedJob(services: Services, job: JobRow, warn: Warn): Followed<JobRow> {
  return {
    read: () => services.jobs.get(job.id),
    subscribe: (seen) => services.jobs.onUpdate(({ job: changed }) => changed.id === job.id && seen(changed)),
    onReadError: (err) => warn(err, `reading job ${job.id} again while waiting for it failed`),
  };
}

/** The job once it is final, or as it is when `timeoutMs` runs out or `signal` aborts. */
export function waitForJob(services: Services, job: JobRow, timeoutMs: number, warn: Warn, signal?: AbortSignal): Promise<JobRow> {
  return follow(job, followedJob(services, job, warn), (j) => isTerminal(j.state), timeoutMs, signal);
}

/** A completed job's result in `req`'s format (the site's VOTable passed through when no other serialization is asked). */
export async function jobAnswer(services: Services, job: JobRow, format: TapQueryRequest['format'], signal?: AbortSignal): Promise<TapAnswer> {
  const result = await jobResult(services.jobs, job.id, 'votable', job.owner, signal, services.jobs.resultFirstByteMs);
  return { contentType: format.contentType, body: convertTo(result.body, format) };
}

/** The error a failed job reports, as one line. */
export function jobError(job: JobRow): string {
  if (job.state === 'ABORTED') return 'the job was aborted';
  return job.errorMessage ?? `the job ended ${job.state}`;
}
