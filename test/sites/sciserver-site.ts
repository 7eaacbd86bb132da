/**
 * A simulated SciServer: Keystone login, RACM/JOBM compute domains (the recorded
 * opensciserver test data, Apache-2.0) and Docker jobs whose status flags progress over time,
 * and CasJobs context tables and async jobs, all behind an X-Auth-Token check.
 */
import { readFileSync } from 'node:fs';
import { SimSite } from './sim-site.js';

const DOMAINS_FIXTURE = new URL('../fixtures/json/sciserver-racm-user-compute-domains.json', import.meta.url);

/** One JOBM docker job as the simulator keeps it. */
export interface SimJobmJob {
  id: number;
  body: Record<string, unknown>;
  createdAt: number;
  canceledAt?: number;
}

export interface SciserverSiteOptions {
  /** The token X-Auth-Token must carry. */
  token?: string;
  /** Keystone user and password that log in successfully. */
  user?: { name: string; password: string };
  /** Milliseconds a job spends before each step up the status flags. */
  stepMs?: number;
}

/** CasJobs tables of the simulated DR17 context (names as CasJobs spells them). */
export const SIM_CASJOBS_TABLES: Record<string, { Name: string; Rows: number; Size: number; Date: string }[]> = {
  DR17: [
    { Name: 'PhotoObjAll', Rows: 1231051050, Size: 3942713344, Date: '2021-11-30T00:00:00' },
    { Name: 'SpecObjAll', Rows: 5789200, Size: 29360128, Date: '2021-11-30T00:00:00' },
    { Name: 'Field', Rows: 938046, Size: 4718592, Date: '2021-11-30T00:00:00' },
  ],
  DR16: [
    { Name: 'PhotoObjAll', Rows: 1231051050, Size: 3942713344, Date: '2019-12-01T00:00:00' },
    { Name: 'zooSpec', Rows: 667944, Size: 262144, Date: '2019-12-01T00:00:00' },
  ],
};

/** The compute domains served: the recorded fixture, with an image whose display name has spaces added to the second domain. */
export function simComputeDomains(): Record<string, unknown>[] {
  const domains = JSON.parse(readFileSync(DOMAINS_FIXTURE, 'utf8')) as Record<string, unknown>[];
  (domains[1].images as unknown[]).push({ id: 20099, publisherDID: '99', racmUUID: '00000000-0000-4000-8000-000000000099', name: 'SciServer Essentials 3.0', description: 'Python + R' });
  return domains;
}

// JOBM flags in the order a job that runs to the end passes through them.
const PROGRESSION = [1, 2, 4, 8, 16, 32];

/** RACM, CasJobs and the Keystone login portal on one loopback server. */
export class SciserverSite extends SimSite {
  readonly token: string;
  readonly user: { name: string; password: string };
  readonly jobs = new Map<number, SimJobmJob>();
  readonly casjobsJobs: { context: string; query: string; taskName?: string }[] = [];
  domains = simComputeDomains();
  /** When true, JSON answers are cut short (malformed JSON). */
  corruptJson = false;
  private readonly stepMs: number;
  private nextJob = 4001;

  constructor(options: SciserverSiteOptions = {}) {
    super();
    this.token = options.token ?? 'keystone-test-token';
    this.user = options.user ?? { name: 'astro', password: 'correct horse' };
    this.stepMs = options.stepMs ?? 100;
    this.routes();
  }

  /** The JOBM status a job has now. */
  statusOf(job: SimJobmJob, now = Date.now()): number {
    if (job.canceledAt !== undefined) return 128;
    const step = Math.floor((now - job.createdAt) / this.stepMs);
    if (step >= PROGRESSION.length - 1 && String(job.body.command ?? '').includes('SIM_FAIL')) return 64;
    return PROGRESSION[Math.min(step, PROGRESSION.length - 1)];
  }

  private routes(): void {
    const app = this.app;
    const json = (reply: import('fastify').FastifyReply, body: unknown, code = 200) => {
      const text = JSON.stringify(body);
      return reply.code(code).type('application/json').send(this.corruptJson ? text.slice(0, Math.max(1, Math.floor(text.length / 2))) : text);
    };

    app.post('/login-portal/keystone/v3/tokens', async (req, reply) => {
      const user = (req.body as { auth?: { identity?: { password?: { user?: { name?: string; password?: string } } } } })?.auth?.identity?.password?.user;
      if (user?.name !== this.user.name || user?.password !== this.user.password) {
        return reply.code(401).type('application/json').send({ error: { code: 401, title: 'Unauthorized' } });
      }
      return reply.code(201).header('x-subject-token', this.token).type('application/json')
        .send({ token: { user: { name: this.user.name, id: '8cf34bf055ab4d8cb7c5a861e81cde23' } } });
    });

    // Everything except the login portal needs the Keystone token.
    app.addHook('preHandler', async (req, reply) => {
      if (req.url.startsWith('/login-portal/')) return;
      if (req.headers['x-auth-token'] !== this.token) {
        return reply.code(401).type('application/json').send({ error: 'Unauthorized', message: 'invalid or missing X-Auth-Token' });
      }
    });

    app.get('/racm/jobm/rest/computedomains', async (req, reply) => {
      const q = req.query as Record<string, string | undefined>;
      // SciScript asks for batch domains only; interactive ones are for notebooks.
      if (q.batch !== 'true') return json(reply, []);
      return json(reply, this.domains);
    });

    app.post('/racm/jobm/rest/jobs/docker', async (req, reply) => {
      const body = req.body as Record<string, unknown> | undefined;
      const required = ['command', 'dockerComputeEndpoint', 'dockerImageName', 'volumeContainers', 'userVolumes'];
      const missing = required.filter((k) => body?.[k] === undefined);
      if (!body || missing.length > 0) return json(reply, { error: `missing ${missing.join(', ')}` }, 400);
      const domain = this.domains.find((d) => d.apiEndpoint === body.dockerComputeEndpoint);
      if (!domain) return json(reply, { error: 'unknown compute endpoint' }, 400);
      if (!(domain.images as { name: string }[]).some((i) => i.name === body.dockerImageName)) return json(reply, { error: 'image not in domain' }, 400);
      const job: SimJobmJob = { id: this.nextJob++, body, createdAt: Date.now() };
      this.jobs.set(job.id, job);
      return json(reply, this.jobJson(job));
    });
    app.get('/racm/jobm/rest/jobs/:id', async (req, reply) => {
      const job = this.jobs.get(Number((req.params as { id: string }).id));
      if (!job) return json(reply, { error: 'no such job' }, 404);
      return json(reply, this.jobJson(job));
    });
    app.post('/racm/jobm/rest/jobs/:id/cancel', async (req, reply) => {
      const job = this.jobs.get(Number((req.params as { id: string }).id));
      if (!job) return json(reply, { error: 'no such job' }, 404);
      if (this.statusOf(job) < 32) job.canceledAt = Date.now();
      return json(reply, this.jobJson(job));
    });

    app.get('/CasJobs/RestApi/contexts/:ctx/Tables', async (req, reply) => {
      const tables = SIM_CASJOBS_TABLES[(req.params as { ctx: string }).ctx];
      if (!tables) return json(reply, { Message: 'context not found' }, 404);
      return json(reply, tables);
    });
    app.put('/CasJobs/RestApi/contexts/:ctx/jobs', async (req, reply) => {
      const body = req.body as { Query?: string; TaskName?: string } | undefined;
      if (!body?.Query) return json(reply, { Message: 'Query is required' }, 400);
      this.casjobsJobs.push({ context: (req.params as { ctx: string }).ctx, query: body.Query, taskName: body.TaskName });
      return json(reply, 70000 + this.casjobsJobs.length);
    });
  }

  private jobJson(job: SimJobmJob): object {
    const status = this.statusOf(job);
    const t = (ms: number) => new Date(job.createdAt + ms).toISOString();
    return {
      id: job.id,
      type: 'jobm.model.COMPMDockerJobModel',
      status,
      submitterDID: job.body.submitterDID,
      username: this.user.name,
      submissionTime: t(0),
      startTime: status >= 8 ? t(3 * this.stepMs) : null,
      endTime: status >= 32 ? t(5 * this.stepMs) : null,
      duration: status >= 32 ? (2 * this.stepMs) / 1000 : 0,
      timeout: 3600,
      command: job.body.command,
      dockerImageName: job.body.dockerImageName,
      resultsFolderURI: `/home/idies/workspace/Temporary/${this.user.name}/jobs/${job.id}/`,
      messages: status === 64 ? [{ id: 1, content: 'container exited with code 1', label: 'ERROR' }] : [],
    };
  }
}
