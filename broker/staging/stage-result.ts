/**
 * Staging a completed job's result into the user's own space at a site (issue 10, point 5):
 * the result is read (bounded) in the form the target takes, written with the user's own
 * credential for that site by the platform's stage writer, and the job's staging record says
 * where it went, or with which coded error it did not.
 */
import type pg from 'pg';
import type { HttpClient } from '../../adapters/http.js';
import { checkStageName, type StageFormat } from '../../adapters/staging.js';
import type { AdapterContext, SiteCredential, SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError, ErrorCodes, isConstellationError } from '../../registry/model/errors.js';
import type { JobRow } from '../../registry/store/queries/jobs.js';
import { claimJobStaging, completeJobStaging, failJobStaging, jobsDueForStaging, jobStaging, type JobStagingRow } from '../../registry/store/queries/job-staging.js';
import { convertResult, siteVotable } from '../jobs/results.js';
import type { JobService } from '../jobs/service.js';
import { stageTargetOf, stageWriterFor, type StageSiteInfo, type StageTarget } from './target.js';

/** What staging needs to know of a site (its federation.yaml entry has all of it). */
export interface StageSite extends StageSiteInfo {
  name: string;
  url: string;
  options?: Record<string, unknown>;
  allowHosts?: readonly string[];
}

/** Where a result went. */
export interface StagedResult {
  site: string;
  name: string;
  location: string;
  bytes: number;
  at: Date;
}

/** Default largest result staged (the same as results.maxBytes): it is held in memory while sent. */
export const DEFAULT_STAGE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Write `result` (a VOTable, as a job's result is) to `target` at `site` with the user's
 * `credential`. Over `maxBytes` is PAYLOAD_TOO_LARGE before anything is sent; a hostile name is
 * INVALID_ARGUMENT naming stageTo.name; the site's refusal is UPSTREAM_AUTH naming the site.
 */
export async function stageResult(
  http: HttpClient,
  site: StageSite,
  target: StageTarget,
  result: SiteResult,
  credential: SiteCredential,
  options: { maxBytes?: number; signal?: AbortSignal } = {},
): Promise<StagedResult> {
  const writer = stageWriterFor(site);
  const name = checkStageName(target.name, writer.nameKind, 'stageTo.name');
  const format: StageFormat = writer.formatFor(name);
  const maxBytes = options.maxBytes ?? DEFAULT_STAGE_MAX_BYTES;
  const stream = convertResult(siteVotable(result, site.id), format);
  const data = await readBounded(stream.body, maxBytes, site.id);
  const ctx: AdapterContext = {
    site: { id: site.id, name: site.name, platform: site.adapter, url: site.url, options: site.options },
    credential,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const siteHttp = http.forSite({ siteId: site.id, url: site.url, allowHosts: site.allowHosts });
  const staged = await writer.write(siteHttp, ctx, { name, format, data });
  return { site: staged.site, name, location: staged.location, bytes: staged.bytes, at: new Date() };
}

/** The whole stream, or PAYLOAD_TOO_LARGE (the source released) once over `max` bytes. */
async function readBounded(body: AsyncIterable<Uint8Array>, max: number, site: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    // Leaving the loop early returns the iterator, which releases the site's response.
    if (total > max) throw new ConstellationError('PAYLOAD_TOO_LARGE', `the result is over the staging limit of ${max} bytes, so nothing was written to site "${site}"; ask for fewer rows (TOP, maxrec)`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, total);
}

/**
 * What the Stager works with. `credentialFor` is the identity layer's: the job owner's own
 * credential for a site (e.g. the job service's SiteResolver binding's context.credential), never
 * the broker's or another user's.
 */
export interface StagerDeps {
  pool: pg.Pool;
  http: HttpClient;
  jobs: JobService;
  sites: readonly StageSite[];
  credentialFor: (job: JobRow, siteId: string) => Promise<SiteCredential>;
  /** Largest result staged (default DEFAULT_STAGE_MAX_BYTES). */
  maxBytes?: number;
  /** Longest time one staging may take, reading and writing included (default 5 min); also its lease. */
  timeoutMs?: number;
}

/** Stages completed jobs that asked for it; one per broker. */
export class Stager {
  constructor(private readonly deps: StagerDeps) {}

  /**
   * The one call the job lifecycle makes once a job is COMPLETED: when its request has
   * `stageTo`, write its result there and record where it went (or the coded error it failed
   * with) as the job's staging record. Never throws; returns the record (undefined when the
   * job asked for no staging). Brokers sharing the database stage a job once: the record is
   * claimed first, and only a claim whose lease ran out is taken over.
   */
  async stageCompleted(job: JobRow): Promise<JobStagingRow | undefined> {
    const target = stageTargetOf(job.request);
    if (!target || job.state !== 'COMPLETED') return undefined;
    const timeoutMs = this.deps.timeoutMs ?? 300_000;
    if (!(await claimJobStaging(this.deps.pool, job.id, target.site, target.name, timeoutMs))) return jobStaging(this.deps.pool, job.id);
    try {
      const site = this.deps.sites.find((s) => s.id === target.site);
      if (!site) throw new ConstellationError('UNKNOWN_SITE', `stageTo.site "${target.site}" is no longer in the federation`);
      const signal = AbortSignal.timeout(timeoutMs);
      const credential = await this.deps.credentialFor(job, site.id);
      const result = await this.deps.jobs.result(job, signal);
      const staged = await stageResult(this.deps.http, site, target, result, credential, { maxBytes: this.deps.maxBytes, signal });
      await completeJobStaging(this.deps.pool, job.id, staged.location, staged.bytes);
    } catch (err) {
      const code = isConstellationError(err) ? err.code : ErrorCodes.INTERNAL.code;
      const message = err instanceof Error ? err.message : String(err);
      await failJobStaging(this.deps.pool, job.id, code, message);
    }
    return jobStaging(this.deps.pool, job.id);
  }

  /**
   * Stage the completed jobs whose staging never finished: those a broker stopped before
   * staging, or died while staging (its lease ran out). Call it at start and now and then; returns
   * how many it staged or recorded as failed.
   */
  async resume(limit = 20): Promise<number> {
    let n = 0;
    for (const id of await jobsDueForStaging(this.deps.pool, limit)) {
      const job = await this.deps.jobs.get(id);
      if (job && (await this.stageCompleted(job))) n++;
    }
    return n;
  }
}

/** Job.stagedTo in GraphQL: null when the job asked for none (or staging has not started). */
export async function stagedToOf(pool: pg.Pool, job: JobRow): Promise<{ site: string; name: string; state: string; location: string | null; at: Date | null; error: { code: string; message: string } | null } | null> {
  if (!stageTargetOf(job.request)) return null;
  const row = await jobStaging(pool, job.id);
  if (!row) return null;
  return {
    site: row.siteId,
    name: row.name,
    state: row.state,
    location: row.location,
    at: row.finishedAt,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
  };
}
