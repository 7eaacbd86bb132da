/**
 * The Adapter query hooks over SciServer CasJobs, answering VOTable either way:
 *  - sync: a quick query (POST /contexts/{ctx}/query); its answer waits, unread for at most
 *    five minutes, under a "casjobs-sync:" id until jobResult collects it;
 *  - async: a CasJobs job (PUT /contexts/{ctx}/jobs) that writes SELECT ... INTO a new MyDB table,
 *    which jobResult reads back with a quick query on MyDB. Its id is
 *    "casjobs:<jobId>:<table>", with ":ordered" added when rows were numbered to keep ORDER BY.
 * SiteQuery.format is not passed on: the broker converts the VOTable to what was asked for.
 */
import { randomBytes } from 'node:crypto';
import type { Adapter, AdapterContext, JobState, SiteCredential, SiteJobStatus, SiteQuery, SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { HeldResults } from '../held-results.js';
import type { SiteHttp } from '../http.js';
import { casjobsTable, casjobsVOTable, type CasJobsTable } from './casjobs-result.js';
import { adqlToCasJobsSql, CASJOBS_ORDER_COLUMN } from './casjobs-sql.js';

/** How the hooks reach CasJobs for a site. */
export interface CasJobsAccess {
  /** The CasJobs REST base URL (undefined when the site has none) and the contexts federation.yaml lists. */
  settings(ctx: AdapterContext): { casjobsUrl?: string; contexts: string[] };
  /** The credential CasJobs takes: a Keystone token in X-Auth-Token. */
  credential(ctx: AdapterContext): Promise<SiteCredential>;
}

// CasJobs job Status values 0..5, by name.
const CASJOBS_PHASES = ['Ready', 'Started', 'Canceling', 'Canceled', 'Failed', 'Finished'] as const;
// Canceling is still running: only Canceled is final.
const CASJOBS_STATE: readonly JobState[] = ['QUEUED', 'EXECUTING', 'EXECUTING', 'ABORTED', 'ERROR', 'COMPLETED'];

const SYNC_PREFIX = 'casjobs-sync:';
const JOB_PREFIX = 'casjobs:';
const JOB_ID = /^casjobs:(\d+):([A-Za-z0-9_]+)(:ordered)?$/;
const VOTABLE = 'application/x-votable+xml';
// TaskName only labels the request in CasJobs's own logs and history.
const TASK = 'Constellation.CasJobs';

type QueryHooks = Required<Pick<Adapter, 'submitQuery' | 'jobStatus' | 'cancelJob' | 'jobResult'>>;

/** True for the ids these hooks hand out (JOBM's are plain numbers). */
export function isCasJobsJobId(id: string): boolean {
  return id.startsWith(SYNC_PREFIX) || id.startsWith(JOB_PREFIX);
}

/** The service id a CasJobs context is published under, e.g. casjobs-dr17. */
export function casjobsServiceId(context: string): string {
  return `casjobs-${context.toLowerCase().replace(/[^a-z0-9_.-]/g, '_')}`;
}

/** Maps a CasJobs Status (0 Ready … 5 Finished) onto a JobState, keeping CasJobs's word as the phase. */
export function casjobsJobState(status: number): { state: JobState; sitePhase: string } | undefined {
  if (!Number.isInteger(status) || status < 0 || status >= CASJOBS_PHASES.length) return undefined;
  return { state: CASJOBS_STATE[status], sitePhase: CASJOBS_PHASES[status] };
}

/** Creates the CasJobs query hooks over one SiteHttp. */
export function createCasJobsHooks(http: SiteHttp, access: CasJobsAccess): QueryHooks {
  const held = new HeldResults<CasJobsTable>(SYNC_PREFIX);

  function baseUrl(ctx: AdapterContext): string {
    const url = access.settings(ctx).casjobsUrl;
    if (url === undefined) throw new ConstellationError('INVALID_CONFIG', `SciServer site ${ctx.site.id} has no casjobsUrl configured`);
    return url;
  }

  /** Runs a quick query and reads its answer, leaving out the column `omit`. */
  async function quickQuery(ctx: AdapterContext, context: string, sql: string, credential: SiteCredential, omit?: string): Promise<CasJobsTable> {
    const res = await http.request(`${baseUrl(ctx)}/contexts/${encodeURIComponent(context)}/query`, {
      method: 'POST',
      credential,
      signal: ctx.signal,
      meter: ctx.meter,
      headers: { 'content-type': 'application/json', accept: 'application/json+array' },
      body: JSON.stringify({ Query: sql, TaskName: `${TASK}.query` }),
    });
    return casjobsTable(await res.text(), `CasJobs ${context} query`, omit);
  }

  async function casjobsStatus(ctx: AdapterContext, jobId: string, credential: SiteCredential): Promise<SiteJobStatus> {
    const res = await http.request(`${baseUrl(ctx)}/jobs/${jobId}`, {
      credential, signal: ctx.signal, meter: ctx.meter, accept: [404], headers: { accept: 'application/json' },
    });
    if (res.status === 404) {
      await res.dump();
      throw new ConstellationError('NOT_FOUND', `CasJobs has no job ${jobId}`);
    }
    const job = await res.json<{ Status?: unknown; Message?: unknown; Error?: unknown }>();
    const mapped = typeof job?.Status === 'number' ? casjobsJobState(job.Status) : undefined;
    if (mapped === undefined) throw new ConstellationError('UPSTREAM_MALFORMED', `CasJobs job ${jobId} has no valid Status (${JSON.stringify(job?.Status)})`);
    const out: SiteJobStatus = { ...mapped };
    if (mapped.state === 'ERROR') {
      const message = [job.Error, job.Message].find((m): m is string => typeof m === 'string' && m.trim() !== '');
      out.error = message?.slice(0, 2000) ?? `CasJobs job ${jobId} failed`;
    }
    return out;
  }

  function parseJobId(siteJobId: string): { jobId: string; table: string; ordered: boolean } {
    const m = JOB_ID.exec(siteJobId);
    if (!m) throw new ConstellationError('NOT_FOUND', `${siteJobId} is not a CasJobs job id`);
    return { jobId: m[1], table: m[2], ordered: m[3] !== undefined };
  }

  return {
    async submitQuery(ctx: AdapterContext, query: SiteQuery): Promise<{ siteJobId: string; status: SiteJobStatus }> {
      const { casjobsUrl, contexts } = access.settings(ctx);
      const context = contexts.find((c) => casjobsServiceId(c) === query.service.toLowerCase());
      if (casjobsUrl === undefined || context === undefined) {
        throw new ConstellationError('INVALID_ARGUMENT', `SciServer site ${ctx.site.id} has no CasJobs service "${query.service}"`);
      }
      if (query.mode === 'sync') {
        const { sql } = adqlToCasJobsSql(query.adql, { maxrec: query.maxrec });
        const table = await quickQuery(ctx, context, sql, await access.credential(ctx));
        const siteJobId = held.hold(table);
        return { siteJobId, status: { state: 'COMPLETED', sitePhase: 'Finished' } };
      }
      const table = `constellation_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
      const { sql, orderColumn } = adqlToCasJobsSql(query.adql, { maxrec: query.maxrec, into: `MyDB.${table}` });
      const res = await http.request(`${casjobsUrl}/contexts/${encodeURIComponent(context)}/jobs`, {
        method: 'PUT',
        credential: await access.credential(ctx),
        signal: ctx.signal,
        meter: ctx.meter,
        // A retried PUT would start a second job.
        retry: false,
        headers: { 'content-type': 'application/json', accept: 'text/plain' },
        body: JSON.stringify({ Query: sql, TaskName: `${TASK}.submitJob` }),
      });
      const answer = (await res.text()).trim();
      if (!/^\d+$/.test(answer)) throw new ConstellationError('UPSTREAM_MALFORMED', `CasJobs answered the job submission without a job id`);
      return { siteJobId: `${JOB_PREFIX}${answer}:${table}${orderColumn ? ':ordered' : ''}`, status: { state: 'QUEUED', sitePhase: 'Ready' } };
    },

    async jobStatus(ctx: AdapterContext, siteJobId: string): Promise<SiteJobStatus> {
      if (held.owns(siteJobId)) return held.status(siteJobId, 'Finished');
      const { jobId } = parseJobId(siteJobId);
      return casjobsStatus(ctx, jobId, await access.credential(ctx));
    },

    async cancelJob(ctx: AdapterContext, siteJobId: string): Promise<void> {
      if (held.owns(siteJobId)) {
        held.take(siteJobId);
        return;
      }
      const { jobId } = parseJobId(siteJobId);
      const res = await http.request(`${baseUrl(ctx)}/jobs/${jobId}`, {
        method: 'DELETE', credential: await access.credential(ctx), signal: ctx.signal, meter: ctx.meter, headers: { accept: 'application/json' },
      });
      await res.dump();
    },

    async jobResult(ctx: AdapterContext, siteJobId: string): Promise<SiteResult> {
      if (held.owns(siteJobId)) return { contentType: VOTABLE, body: casjobsVOTable(held.collect(siteJobId)) };
      const { jobId, table, ordered } = parseJobId(siteJobId);
      const credential = await access.credential(ctx);
      const status = await casjobsStatus(ctx, jobId, credential);
      if (status.state !== 'COMPLETED') {
        throw new ConstellationError('UPSTREAM', `CasJobs job ${jobId} has no result: it is ${status.sitePhase}${status.error ? ` (${status.error})` : ''}`);
      }
      const sql = `SELECT * FROM [${table}]${ordered ? ` ORDER BY [${CASJOBS_ORDER_COLUMN}]` : ''}`;
      const rows = await quickQuery(ctx, 'MyDB', sql, credential, ordered ? CASJOBS_ORDER_COLUMN : undefined);
      return { contentType: VOTABLE, body: casjobsVOTable(rows) };
    },
  };
}
