/**
 * The fleet harness's view of the job leases over time: every `intervalMs` it reads each
 * unfinished job's state, lease owner and last update from the shared database. From these
 * samples the audit learns which lease owner (a broker's random id) is which process, and how
 * long the jobs a stopped broker held waited before another broker moved them.
 */
import type pg from 'pg';

/** One unfinished job in one sample. */
export interface LeaseRow {
  id: string;
  state: string;
  owner: string | null;
  /** updated_at, ms since the epoch. */
  updated: number;
  placed: boolean;
  /** Where it is placed: its site and the site's job id (the last segment of a UWS job URL). */
  siteId: string | null;
  siteJob: string | null;
}

export interface LeaseSample {
  at: number;
  rows: Map<string, LeaseRow>;
}

export class LeaseSampler {
  readonly samples: LeaseSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Errors reading the database (the sampler goes on). */
  errors = 0;

  constructor(private readonly pool: pg.Pool, private readonly intervalMs = 250) {}

  start(): void {
    this.schedule();
  }

  /** Take one sample now. */
  async sample(): Promise<LeaseSample> {
    const { rows } = await this.pool.query<{ id: string; state: string; owner: string | null; updated: string; siteId: string | null; siteJobId: string | null }>(
      `SELECT id, state, lease_owner AS owner, (extract(epoch FROM updated_at) * 1000)::bigint AS updated, site_id AS "siteId", site_job_id AS "siteJobId"
         FROM jobs WHERE state IN ('PENDING', 'QUEUED', 'EXECUTING')`);
    const s: LeaseSample = {
      at: Date.now(),
      rows: new Map(rows.map((r) => [r.id, {
        id: r.id, state: r.state, owner: r.owner, updated: Number(r.updated), placed: r.siteJobId !== null,
        siteId: r.siteJobId === null ? null : r.siteId, siteJob: r.siteJobId === null ? null : (/\/async\/([^/?]+)$/.exec(r.siteJobId)?.[1] ?? null),
      }])),
    };
    this.samples.push(s);
    return s;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sample().then(
        () => undefined,
        () => {
          this.errors++;
        },
      ).finally(() => this.schedule());
    }, this.intervalMs);
  }
}
