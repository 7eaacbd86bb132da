/**
 * Counting what a fleet run did, from what each party recorded: the client (every submit's
 * answer), the sites (every request that created work, by sender process), the database (every
 * job's final row, the harvest claims and runs) and the lease samples.
 *
 * What counts as submitted twice, precisely:
 * - an async job (UWS) created at one site twice under one RUNID is a duplicate, always;
 * - an async job created at a site under a RUNID but not the site job the broker recorded for
 *   that job is an orphan: it runs (or ran) at the site and no broker follows or cancels it;
 *   one the broker had the site delete or abort (its start could not be confirmed, or the job
 *   was cancelled meanwhile) is dropped, counted apart, not an orphan;
 * - a synchronous query has no id a site could be asked about, so a broker that cannot tell
 *   whether an attempt was answered sends it again. Sending it again is allowed when the earlier
 *   attempt's answer was never delivered whole (a fault cut it, the connection closed first), or
 *   when the process that sent it died (SIGKILL, or SIGTERM) between sending it and the next
 *   attempt. A second attempt after an answer delivered whole to a process that lived on is a
 *   duplicate.
 */
import type { FleetProcess } from './broker-fleet.js';
import type { SubmittedJob } from './fleet-client.js';
import type { LeaseSample } from './fleet-sampler.js';
import type { SiteAttempt, SiteCancel, SiteJobRequest } from '../sites/fault-injector.js';

/** One job's final row. */
export interface FinalJob {
  id: string;
  key: string | null;
  state: string;
  siteId: string | null;
  siteJobId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** A figure over several delays. */
export interface Delays {
  n: number;
  medianMs: number | null;
  maxMs: number | null;
}

/** The client's side. */
export interface ClientCounts {
  jobs: number;
  firstAnswered: number;
  retryAnswered: number;
  /** Both answers named a job: the same one. */
  sameId: number;
  /** Both answers named a job, not the same one: an idempotency failure. */
  differentId: string[];
  /** Neither attempt named a job. */
  bothFailed: number;
  /** Failed attempts by error code. */
  errors: Record<string, number>;
  /** One message for each error code. */
  errorSamples: Record<string, string>;
}

export interface JobCounts {
  /** Keys with a job (named to the client, or found in the database). */
  accepted: number;
  /** Keys with a job the client was never told of (both attempts failed after it was created). */
  acceptedUnseen: number;
  /** Keys neither told to the client nor in the database: refused, never created. */
  neverCreated: number;
  final: Record<string, number>;
  /** Jobs named to the client but absent from the database. */
  missing: string[];
  /** Jobs not COMPLETED, ERROR or ABORTED at the end. */
  notFinal: string[];
  /** ERROR jobs by code and the shape of their message. */
  errorCauses: Record<string, number>;
}

export interface SyncCounts {
  runIds: number;
  attempts: number;
  /** Runs sent exactly once. */
  once: number;
  /** Second sends after an answer that was never delivered whole. */
  afterUndelivered: number;
  /** Second sends after the sender died holding a delivered answer. */
  afterSenderDied: number;
  /** Second sends after a delivered answer whose sender could not be told. */
  unattributed: string[];
  duplicates: DuplicateDetail[];
}

export interface DuplicateDetail {
  jobId: string;
  sites: string[];
  detail: string;
}

export interface AsyncCounts {
  runIds: number;
  creations: number;
  /** RUNIDs created twice at one site. */
  twiceAtOneSite: DuplicateDetail[];
  /** Site jobs created for a broker job that are not the one it recorded and that no broker had the site delete or abort. */
  orphans: DuplicateDetail[];
  /** The orphans by what hit their creation. */
  orphansByCause: Record<string, number>;
  /** Site jobs created for a broker job, not the one it recorded, that the broker had the site delete or abort (by what hit their creation). */
  dropped: number;
  droppedByCause: Record<string, number>;
}

export interface HarvestCounts {
  periodMs: number;
  /** Per site: ticks claimed of those due in the run's window; claims and scheduled runs over the database's life. */
  perSite: { site: string; ticksClaimed: number; ticksExpected: number; claimsEver: number; scheduledRuns: number }[];
  /** Sites with more scheduled runs than claimed ticks: a tick harvested twice. */
  overClaimed: string[];
  /** Scheduled runs left RUNNING 20 s after their lease lapsed (never closed), with when each started and the stops signalled while it could still run. */
  runningLeft: string[];
  /** Runs a killed broker left RUNNING, closed by another as abandoned. */
  abandonedClosed: number;
}

/** What a stopped broker left, and how long its jobs waited for another. */
export interface StopFigure {
  index: number;
  generation: number;
  pid: number;
  signal: 'SIGKILL' | 'SIGTERM';
  /** Signal to exit. */
  exitMs: number;
  /** A SIGTERM not obeyed within the grace period, so SIGKILL followed. */
  escalated: boolean;
  /** The broker's lease owner id, when the samples told it. */
  owner?: string;
  /** Unfinished jobs it held a lease on at its exit (after SIGTERM: leases it did not release). */
  leasedAtExit: number;
  /** For SIGTERM: jobs it held in the last sample before its exit (the end of its drain) that were still unfinished after it. */
  heldAtDrainEnd: number;
  /** From its exit until another broker moved each of those jobs. */
  takeover: Delays;
  /** Jobs never moved again within the samples. */
  neverMoved: number;
}

/** Median and max of `xs`. */
export function delays(xs: number[]): Delays {
  if (xs.length === 0) return { n: 0, medianMs: null, maxMs: null };
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { n: s.length, medianMs: Math.round(s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2), maxMs: Math.round(s[s.length - 1]) };
}

/** The client's counts. */
export function countClient(submitted: readonly SubmittedJob[]): ClientCounts {
  const out: ClientCounts = { jobs: submitted.length, firstAnswered: 0, retryAnswered: 0, sameId: 0, differentId: [], bothFailed: 0, errors: {}, errorSamples: {} };
  for (const s of submitted) {
    for (const a of [s.first, s.retry]) {
      if (a.jobId) continue;
      const code = a.errorCode ?? 'UNKNOWN';
      out.errors[code] = (out.errors[code] ?? 0) + 1;
      out.errorSamples[code] ??= (a.error ?? '').slice(0, 300);
    }
    if (s.first.jobId) out.firstAnswered++;
    if (s.retry.jobId) out.retryAnswered++;
    if (s.first.jobId && s.retry.jobId) {
      if (s.first.jobId === s.retry.jobId) out.sameId++;
      else out.differentId.push(`${s.spec.key}: ${s.first.jobId} then ${s.retry.jobId}`);
    }
    if (!s.first.jobId && !s.retry.jobId) out.bothFailed++;
  }
  return out;
}

const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED']);

/** The jobs' counts: every key accounted for, every job final. */
export function countJobs(submitted: readonly SubmittedJob[], rows: readonly FinalJob[]): JobCounts {
  const byKey = new Map(rows.filter((r) => r.key !== null).map((r) => [r.key, r]));
  const byId = new Map(rows.map((r) => [r.id, r]));
  const out: JobCounts = { accepted: 0, acceptedUnseen: 0, neverCreated: 0, final: {}, missing: [], notFinal: [], errorCauses: {} };
  for (const s of submitted) {
    const told = [s.first.jobId, s.retry.jobId].filter((x): x is string => x !== undefined);
    const row = byKey.get(s.spec.key);
    for (const id of told) if (!byId.has(id)) out.missing.push(`${s.spec.key}: ${id}`);
    if (!row) {
      if (told.length === 0) out.neverCreated++;
      continue;
    }
    out.accepted++;
    if (told.length === 0) out.acceptedUnseen++;
    out.final[row.state] = (out.final[row.state] ?? 0) + 1;
    if (!FINAL.has(row.state)) out.notFinal.push(`${row.id} (${s.spec.key}) ${row.state}`);
    if (row.state === 'ERROR') {
      const cause = `${row.errorCode ?? '?'}: ${messageShape(row.errorMessage ?? '')}`;
      out.errorCauses[cause] = (out.errorCauses[cause] ?? 0) + 1;
    }
  }
  return out;
}

/** A message with its numbers, URLs, ids and times blanked, so like failures count together. */
function messageShape(message: string): string {
  return message
    .replace(/https?:\/\/[^\s,;)]+/g, '<url>')
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
    .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>')
    .replace(/\d+(\.\d+)?/g, 'N')
    .slice(0, 160);
}

/** Is process `pid` dead by `until`, having died after `from`? */
function diedBetween(processes: readonly FleetProcess[], pid: number | undefined, from: number, until: number): boolean {
  const p = processes.find((x) => x.pid === pid);
  return p?.exitedAt !== undefined && p.exitedAt >= from && p.exitedAt <= until;
}

/** Synchronous queries: each RUNID's attempts in order, every later one explained or a duplicate. */
export function countSync(attempts: readonly SiteAttempt[], processes: readonly FleetProcess[]): SyncCounts {
  const byRun = groupBy(attempts.filter((a) => a.mode === 'sync'), (a) => a.runId);
  const out: SyncCounts = { runIds: byRun.size, attempts: 0, once: 0, afterUndelivered: 0, afterSenderDied: 0, unattributed: [], duplicates: [] };
  for (const [runId, list] of byRun) {
    list.sort((a, b) => a.at - b.at);
    out.attempts += list.length;
    if (list.length === 1) out.once++;
    for (let i = 0; i + 1 < list.length; i++) {
      const a = list[i];
      const next = list[i + 1];
      if (!a.delivered) out.afterUndelivered++;
      else if (a.pid === undefined) {
        // The sender could not be told (it was gone when the site looked): a broker dying then explains it.
        if (processes.some((p) => p.exitedAt !== undefined && p.exitedAt >= a.at - 1000 && p.exitedAt <= next.at)) out.afterSenderDied++;
        else out.unattributed.push(`${runId} at ${a.site}`);
      } else if (diedBetween(processes, a.pid, a.at, next.at)) out.afterSenderDied++;
      else {
        out.duplicates.push({
          jobId: runId,
          sites: list.map((x) => x.site),
          detail: list.map((x) => `${x.site} pid ${x.pid ?? '?'} at ${new Date(x.at).toISOString()} ${x.delivered ? 'delivered' : `not delivered (${x.fault ?? `status ${x.status ?? 'none'}`})`}`).join('; '),
        });
      }
    }
  }
  return out;
}

/** Async creations: none twice at one site, and each the one the broker recorded (else an orphan). */
export function countAsync(attempts: readonly SiteAttempt[], cancels: readonly SiteCancel[], rows: readonly FinalJob[]): AsyncCounts {
  const created = attempts.filter((a) => a.mode === 'async');
  const byRun = groupBy(created, (a) => a.runId);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const cancelled = new Set(cancels.map((c) => `${c.site}/${c.siteJobId}`));
  const out: AsyncCounts = { runIds: byRun.size, creations: created.length, twiceAtOneSite: [], orphans: [], orphansByCause: {}, dropped: 0, droppedByCause: {} };
  for (const [runId, list] of byRun) {
    list.sort((a, b) => a.at - b.at);
    const row = byId.get(runId);
    const detail = () => list.map((x) => `${x.site}/${x.siteJobId ?? '?'} pid ${x.pid ?? '?'} at ${new Date(x.at).toISOString()}${x.fault ? ` (${x.fault})` : ''}`).join('; ');
    for (const [site, atSite] of groupBy(list, (a) => a.site)) {
      if (atSite.length > 1) out.twiceAtOneSite.push({ jobId: runId, sites: [site], detail: `recorded ${row?.siteId ?? '-'}/${recordedSiteJob(row) ?? '-'}; ${detail()}` });
    }
    for (const a of list) {
      const recorded = row?.siteId === a.site && a.siteJobId !== undefined && recordedSiteJob(row) === a.siteJobId;
      if (recorded) continue;
      const cause = a.fault ? `its creation answer was hit by ${a.fault}` : a.siteJobId === undefined ? 'no job id answered' : 'created and answered cleanly';
      if (a.siteJobId !== undefined && cancelled.has(`${a.site}/${a.siteJobId}`)) {
        out.dropped++;
        out.droppedByCause[cause] = (out.droppedByCause[cause] ?? 0) + 1;
        continue;
      }
      out.orphansByCause[cause] = (out.orphansByCause[cause] ?? 0) + 1;
      out.orphans.push({ jobId: runId, sites: list.map((x) => x.site), detail: `${cause}; job ${row?.state ?? 'absent'} recorded at ${row?.siteId ?? '-'}/${recordedSiteJob(row) ?? '-'}; ${detail()}` });
    }
  }
  return out;
}

/** The site job id (last path segment of the job URL) the broker recorded. */
function recordedSiteJob(row: FinalJob | undefined): string | undefined {
  const url = row?.siteJobId;
  if (!url) return undefined;
  return /\/async\/([^/?]+)$/.exec(url)?.[1];
}

/**
 * Which lease owner id is which process. A process's request at a site about a job while that
 * job was leased is a vote for the lease's owner: a submit (RUNID r, r's job unplaced and leased
 * to o: the submit lease is held throughout) or a request about a placed job (a poll, which
 * holds the poll lease while it asks). The most voted owner wins.
 */
export function ownersByPid(attempts: readonly SiteAttempt[], jobRequests: readonly SiteJobRequest[], samples: readonly LeaseSample[]): Map<number, string> {
  const votes = new Map<number, Map<string, number>>();
  const vote = (pid: number, owner: string) => {
    const forPid = votes.get(pid) ?? new Map<string, number>();
    forPid.set(owner, (forPid.get(owner) ?? 0) + 1);
    votes.set(pid, forPid);
  };
  const near = nearSamples(samples);
  for (const a of attempts) {
    if (a.pid === undefined) continue;
    for (const s of near(a.at)) {
      const row = s.rows.get(a.runId);
      if (row && !row.placed && row.owner !== null) vote(a.pid, row.owner);
    }
  }
  for (const q of jobRequests) {
    if (q.pid === undefined) continue;
    for (const s of near(q.at)) {
      for (const row of s.rows.values()) if (row.siteJob === q.siteJobId && row.siteId === q.site && row.owner !== null) vote(q.pid, row.owner);
    }
  }
  const out = new Map<number, string>();
  for (const [pid, forPid] of votes) {
    const best = [...forPid].sort((x, y) => y[1] - x[1])[0];
    if (best) out.set(pid, best[0]);
  }
  return out;
}

/** The samples taken within 500 ms of a time (samples sorted by time). */
function nearSamples(samples: readonly LeaseSample[]): (at: number) => LeaseSample[] {
  return (at) => {
    let lo = 0;
    let hi = samples.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (samples[mid].at < at - 500) lo = mid + 1;
      else hi = mid;
    }
    const out: LeaseSample[] = [];
    for (let i = lo; i < samples.length && samples[i].at <= at + 500; i++) out.push(samples[i]);
    return out;
  };
}

/** How long the jobs a stopped broker held waited for another broker to move them. */
export function stopFigure(p: FleetProcess, owner: string | undefined, samples: readonly LeaseSample[]): StopFigure | undefined {
  const { signal, signalledAt, exitedAt } = p;
  if (signal === undefined || signalledAt === undefined || exitedAt === undefined) return undefined;
  const base = { index: p.index, generation: p.generation, pid: p.pid, signal, exitMs: exitedAt - signalledAt, escalated: p.escalatedAt !== undefined, ...(owner ? { owner } : {}) };
  const after = samples.filter((s) => s.at > exitedAt);
  const atExit = after[0];
  if (!owner || !atExit) return { ...base, leasedAtExit: 0, heldAtDrainEnd: 0, takeover: delays([]), neverMoved: 0 };
  const leasedAtExit = [...atExit.rows.values()].filter((r) => r.owner === owner).map((r) => r.id);
  let watched = leasedAtExit;
  let heldAtDrainEnd = 0;
  if (signal === 'SIGTERM' && p.escalatedAt === undefined) {
    const before = samples.filter((s) => s.at <= exitedAt).at(-1);
    const held = before ? [...before.rows.values()].filter((r) => r.owner === owner).map((r) => r.id) : [];
    watched = held.filter((id) => atExit.rows.has(id));
    heldAtDrainEnd = watched.length;
  }
  const waits: number[] = [];
  let neverMoved = 0;
  for (const id of watched) {
    const ref = atExit.rows.get(id);
    if (!ref) continue;
    const moved = after.slice(1).find((s) => {
      const r = s.rows.get(id);
      return !r || r.state !== ref.state || r.updated > ref.updated || (r.owner !== null && r.owner !== owner);
    });
    if (moved) waits.push(moved.at - exitedAt);
    else neverMoved++;
  }
  return { ...base, leasedAtExit: leasedAtExit.length, heldAtDrainEnd, takeover: delays(waits), neverMoved };
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const list = out.get(key(item));
    if (list) list.push(item);
    else out.set(key(item), [item]);
  }
  return out;
}
