/**
 * A simulated SciServer: Keystone login, RACM/JOBM compute domains (the recorded
 * opensciserver test data, Apache-2.0) and Docker jobs whose status flags progress over time,
 * and CasJobs: context table listings, quick queries answered from canned rows, and async jobs
 * whose Status goes 0 → 1 → 5 and whose SELECT ... INTO MyDB tables can be read back, all
 * behind an X-Auth-Token check. Every T-SQL text received is recorded for assertions.
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

/** A CasJobs result set: values as CasJobs writes them in JSON (bigint for 64-bit ids). */
export interface SimCasJobsTable {
  Columns: string[];
  Data: (string | number | bigint | boolean | null)[][];
}

/** One CasJobs async job as the simulator keeps it. */
export interface SimCasJobsJob {
  id: number;
  context: string;
  query: string;
  taskName?: string;
  createdAt: number;
  canceledAt?: number;
  /** The MyDB table the job writes (SELECT ... INTO MyDB.<name>). */
  into?: string;
  /** What the job writes there, or why it fails. */
  outcome: SimCasJobsTable | { error: string };
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

/**
 * Rows of the simulated tables, by context and table: a sample whatever Rows the listing
 * claims. Every double has a fraction, as CasJobs (Json.NET) writes doubles.
 */
export const SIM_CASJOBS_ROWS: Record<string, Record<string, SimCasJobsTable>> = {
  DR17: {
    PhotoObjAll: {
      Columns: ['objID', 'ra', 'dec', 'type', 'clean', 'flags'],
      Data: [
        [1237648720693755918n, 195.0134, 2.5134, 3, true, 268435472n],
        [1237648720693755919n, 195.0211, 2.5177, 6, false, 68987912192n],
        [1237648720693755920n, 195.1402, 2.4988, 3, null, null],
      ],
    },
    SpecObjAll: {
      Columns: ['specObjID', 'class', 'z', 'subClass'],
      Data: [
        [299489677444933632n, 'GALAXY', 0.0321, null],
        [299489952322840576n, 'QSO', 1.5318, 'BROADLINE'],
        [299490227200747520n, 'STAR', -0.0001, 'K3'],
      ],
    },
    Field: {
      Columns: ['fieldID', 'run', 'mjd', 'quality', 'comment', ''],
      Data: [
        [1237648720693690368n, 756, 51075, null, 'Messier 49 – Virgo', 1],
        [1237648720693755904n, 756, 51075.5, null, null, 'x'],
      ],
    },
  },
};

/** JSON text with bigints written as plain numbers, as CasJobs writes 64-bit ids. */
function casjobsJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000big${v}` : v)).replace(/"\\u0000big(-?\d+)"/g, '$1');
}

/** Bracketed or bare T-SQL name, without the brackets. */
function bare(name: string): string {
  return name.replace(/^\[|\]$/g, '');
}

/** Splits at commas outside parentheses. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

/**
 * What the simulator understands of T-SQL: the first FROM table, TOP or FETCH NEXT, and a select
 * list of *, (qualified) names with aliases and ROW_NUMBER() columns; anything else in the list is
 * a NULL column, and WHERE is not evaluated. An unknown table or column is an error, as in SQL Server.
 */
export function simSelect(sql: string, tables: Record<string, SimCasJobsTable>): SimCasJobsTable | { error: string } {
  const from = /\bFROM\s+((?:\[[^\]]+\]|\w+)(?:\.(?:\[[^\]]+\]|\w+))*)/i.exec(sql);
  if (!from) return { error: 'Incorrect syntax: no FROM' };
  const tableName = bare(from[1].split('.').pop()!);
  const key = Object.keys(tables).find((k) => k.toLowerCase() === tableName.toLowerCase());
  if (key === undefined) return { error: `Invalid object name '${from[1]}'.` };
  const table = tables[key];
  const limit = /\bTOP\s+(\d+)/i.exec(sql) ?? /\bFETCH\s+NEXT\s+(\d+)/i.exec(sql);
  const rows = limit ? table.Data.slice(0, Number(limit[1])) : table.Data;
  const list = /^\s*(?:WITH\b.*?\)\s*)?SELECT\s+(?:DISTINCT\s+)?(?:TOP\s+\d+\s+)?(.*?)\s+(?:INTO\s+\S+\s+)?FROM\b/is.exec(sql);
  const columns: string[] = [];
  const pick: ((row: SimCasJobsTable['Data'][number], i: number) => SimCasJobsTable['Data'][number][number])[] = [];
  for (const item of splitTop(list?.[1] ?? '*')) {
    const alias = /\s+AS\s+(\[[^\]]+\]|\w+)$/i.exec(item);
    const expr = alias ? item.slice(0, alias.index).trim() : item;
    if (expr === '*' || expr.endsWith('.*')) {
      table.Columns.forEach((c, j) => {
        columns.push(c);
        pick.push((row) => row[j]);
      });
    } else if (/^ROW_NUMBER\(\)/i.test(expr)) {
      columns.push(alias ? bare(alias[1]) : '');
      pick.push((_row, i) => i + 1);
    } else if (/^(?:(?:\[[^\]]+\]|\w+)\.)*(?:\[[^\]]+\]|\w+)$/.test(expr)) {
      const name = bare(expr.split('.').pop()!);
      const j = table.Columns.findIndex((c) => c.toLowerCase() === name.toLowerCase());
      if (j < 0) return { error: `Invalid column name '${name}'.` };
      columns.push(alias ? bare(alias[1]) : table.Columns[j]);
      pick.push((row) => row[j]);
    } else {
      columns.push(alias ? bare(alias[1]) : '');
      pick.push(() => null);
    }
  }
  return { Columns: columns, Data: rows.map((row, i) => pick.map((p) => p(row, i))) };
}

/** The compute domains served: the recorded fixture, with an image whose display name has spaces added to the second domain. */
export function simComputeDomains(): Record<string, unknown>[] {
  const domains = JSON.parse(readFileSync(DOMAINS_FIXTURE, 'utf8')) as Record<string, unknown>[];
  (domains[1].images as unknown[]).push({ id: 20099, publisherDID: '99', racmUUID: '00000000-0000-4000-8000-000000000099', name: 'SciServer Essentials 3.0', description: 'Python + R' });
  return domains;
}

// Where SciScript uploads a CSV into a MyDB table ({CasJobs}/contexts/MyDB/Tables/{name}).
const STAGE_PATH = '/CasJobs/RestApi/contexts/MyDB/Tables/';

// JOBM flags in the order a job that runs to the end passes through them.
const PROGRESSION = [1, 2, 4, 8, 16, 32];
// CasJobs Status values in the order a job that runs to the end passes through them: Ready, Started, Finished.
const CASJOBS_PROGRESSION = [0, 1, 5];

/** RACM, CasJobs and the Keystone login portal on one loopback server. */
export class SciserverSite extends SimSite {
  readonly token: string;
  readonly user: { name: string; password: string };
  readonly jobs = new Map<number, SimJobmJob>();
  readonly casjobsJobs: SimCasJobsJob[] = [];
  /** Every quick query received, in order. */
  readonly casjobsQueries: { context: string; query: string; taskName?: string; accept?: string }[] = [];
  domains = simComputeDomains();
  /** Staging: Keystone token → user name, for the MyDB upload route (the constructor's token is the default user's). */
  readonly stageAccounts = new Map<string, string>();
  /** Staging: tables uploaded into each user's MyDB (user → table → CSV text as received). */
  readonly stagedMyDb = new Map<string, Map<string, string>>();
  private readonly stepMs: number;
  private nextJob = 4001;

  constructor(options: SciserverSiteOptions = {}) {
    super();
    this.token = options.token ?? 'keystone-test-token';
    this.user = options.user ?? { name: 'astro', password: 'correct horse' };
    this.stepMs = options.stepMs ?? 100;
    this.stageAccounts.set(this.token, this.user.name);
    this.routes();
    this.stagingRoutes();
  }

  /** The CasJobs Status a job has now; a query naming SIM_FAIL, or one the simulator cannot run, fails. */
  casjobsStatusOf(job: SimCasJobsJob, now = Date.now()): number {
    if (job.canceledAt !== undefined) return 3;
    const step = Math.floor((now - job.createdAt) / this.stepMs);
    if (step >= CASJOBS_PROGRESSION.length - 1 && 'error' in job.outcome) return 4;
    return CASJOBS_PROGRESSION[Math.min(step, CASJOBS_PROGRESSION.length - 1)];
  }

  /** The tables of the caller's MyDB: those written by Finished jobs. */
  myDb(): Record<string, SimCasJobsTable> {
    const out: Record<string, SimCasJobsTable> = {};
    for (const job of this.casjobsJobs) {
      if (job.into !== undefined && !('error' in job.outcome) && this.casjobsStatusOf(job) === 5) out[job.into] = job.outcome;
    }
    return out;
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
    const json = (reply: import('fastify').FastifyReply, body: unknown, code = 200) => this.sendJson(reply, JSON.stringify(body), code);

    app.post('/login-portal/keystone/v3/tokens', async (req, reply) => {
      const user = (req.body as { auth?: { identity?: { password?: { user?: { name?: string; password?: string } } } } })?.auth?.identity?.password?.user;
      if (user?.name !== this.user.name || user?.password !== this.user.password) {
        return reply.code(401).type('application/json').send({ error: { code: 401, title: 'Unauthorized' } });
      }
      return reply.code(201).header('x-subject-token', this.token).type('application/json')
        .send({ token: { user: { name: this.user.name, id: '8cf34bf055ab4d8cb7c5a861e81cde23' } } });
    });

    // Everything except the login portal needs the Keystone token (a test's credential gate, when set, checks instead).
    app.addHook('preHandler', async (req, reply) => {
      if (req.url.startsWith('/login-portal/') || this.checksCredentials) return;
      // The MyDB upload checks its own token: it needs to know which user's MyDB to write.
      if (req.method === 'POST' && req.url.startsWith(STAGE_PATH)) return;
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
    const casjobsAnswer = (reply: import('fastify').FastifyReply, body: unknown, code = 200) => this.sendJson(reply, casjobsJson(body), code);
    app.post('/CasJobs/RestApi/contexts/:ctx/query', async (req, reply) => {
      const context = (req.params as { ctx: string }).ctx;
      const body = req.body as { Query?: string; TaskName?: string } | undefined;
      const accept = req.headers.accept;
      if (!body?.Query) return json(reply, { Message: 'Query is required' }, 400);
      this.casjobsQueries.push({ context, query: body.Query, taskName: body.TaskName, accept });
      if (accept !== 'application/json+array') return json(reply, { Message: 'the simulator answers application/json+array only' }, 406);
      const tables = context === 'MyDB' ? this.myDb() : SIM_CASJOBS_ROWS[context];
      if (!tables) return json(reply, { Message: `context ${context} not found` }, 404);
      const result = body.Query.includes('SIM_FAIL') ? { error: 'simulated failure' } : simSelect(body.Query, tables);
      if ('error' in result) return json(reply, { 'Error Code': 500, 'Error Type': 'SqlException', 'Error Message': result.error }, 500);
      return casjobsAnswer(reply, { Result: [{ TableName: 'Table1', Columns: result.Columns, Data: result.Data }] });
    });
    app.put('/CasJobs/RestApi/contexts/:ctx/jobs', async (req, reply) => {
      const context = (req.params as { ctx: string }).ctx;
      const body = req.body as { Query?: string; TaskName?: string } | undefined;
      if (!body?.Query) return json(reply, { Message: 'Query is required' }, 400);
      const into = /\bINTO\s+MyDB\.(\[[^\]]+\]|\w+)/i.exec(body.Query);
      const tables = SIM_CASJOBS_ROWS[context] ?? {};
      const outcome = body.Query.includes('SIM_FAIL') ? { error: "Invalid column name 'SIM_FAIL'." } : simSelect(body.Query, tables);
      const job: SimCasJobsJob = {
        id: 70001 + this.casjobsJobs.length, context, query: body.Query, taskName: body.TaskName, createdAt: Date.now(), outcome,
        ...(into ? { into: bare(into[1]) } : {}),
      };
      this.casjobsJobs.push(job);
      return reply.code(200).type('text/plain').send(String(job.id));
    });
    app.get('/CasJobs/RestApi/jobs/:id', async (req, reply) => {
      const job = this.casjobsJobs.find((j) => j.id === Number((req.params as { id: string }).id));
      if (!job) return json(reply, { Message: 'no such job' }, 404);
      return json(reply, this.casjobsJobJson(job));
    });
    app.delete('/CasJobs/RestApi/jobs/:id', async (req, reply) => {
      const job = this.casjobsJobs.find((j) => j.id === Number((req.params as { id: string }).id));
      if (!job) return json(reply, { Message: 'no such job' }, 404);
      if (this.casjobsStatusOf(job) < 3) job.canceledAt = Date.now();
      return json(reply, this.casjobsJobJson(job));
    });
  }

  /**
   * Staging into MyDB, as SciScript's CasJobs.uploadCSVDataToTable calls it: POST
   * /contexts/MyDB/Tables/{name} with CSV, into the MyDB of the user the X-Auth-Token belongs to.
   */
  private stagingRoutes(): void {
    this.app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: 16 * 1024 * 1024 }, (_req, body, done) => done(null, body));
    this.app.post(`${STAGE_PATH}:name`, async (req, reply) => {
      const token = req.headers['x-auth-token'];
      const user = typeof token === 'string' ? this.stageAccounts.get(token) : undefined;
      if (user === undefined) return reply.code(401).type('application/json').send({ error: 'Unauthorized', message: 'invalid or missing X-Auth-Token' });
      const name = (req.params as { name: string }).name;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return reply.code(400).type('application/json').send({ 'Error Message': `Incorrect syntax near '${name.slice(0, 20)}'.` });
      const tables = this.stagedMyDb.get(user) ?? new Map<string, string>();
      if (tables.has(name)) return reply.code(500).type('application/json').send({ 'Error Type': 'SqlException', 'Error Message': `There is already an object named '${name}' in the database.` });
      if (typeof req.body !== 'string' || req.body === '') return reply.code(400).type('application/json').send({ 'Error Message': 'no CSV data' });
      tables.set(name, req.body);
      this.stagedMyDb.set(user, tables);
      return reply.code(200).type('application/json').send('true');
    });
  }

  private casjobsJobJson(job: SimCasJobsJob): object {
    const status = this.casjobsStatusOf(job);
    return {
      JobID: job.id,
      Status: status,
      Query: job.query,
      Target: job.context,
      TaskName: job.taskName,
      TimeSubmit: new Date(job.createdAt).toISOString(),
      Message: status === 4 && 'error' in job.outcome ? job.outcome.error : status === 5 ? 'Query Complete' : '',
    };
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
