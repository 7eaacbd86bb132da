/**
 * A simulated data centre for the demo: a real TAP 1.1 service on 127.0.0.1 (fastify) over
 * its own catalogue tables. VOSI capabilities (TAPRegExt: ADQL and its geometry, inline
 * upload, output and upload limits), tables (with UCDs) and availability; sync queries
 * (GET/POST {base}/sync) and UWS async jobs ({base}/async); LANG=ADQL, QUERY, MAXREC,
 * RESPONSEFORMAT (VOTable BINARY2 or TABLEDATA), UPLOAD=name,param:part with the VOTable as a
 * multipart part. Queries run for real (engine.ts); every one is counted in `ledger`.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { QueryEngine, type QueryAnswer, type QueryRequest } from './centre/engine.js';
import { QueryLedger, type QueryRecord } from './centre/ledger.js';
import { requestParams, TapFault, type TapParams } from './centre/params.js';
import { isActive, JobStore, jobListXml, jobXml, setPhase, waitForChange, type UwsJob } from './centre/uws.js';
import { availabilityXml, capabilitiesXml, errorVotable, tableDetailXml, tablesetXml, type CentreLimits } from './centre/vosi.js';
import { rowCount, type CentreTable } from './table.js';

export type { CentreLimits } from './centre/vosi.js';
export type { LedgerTotals, QueryRecord } from './centre/ledger.js';

/** What a centre serves and where. */
export interface CentreOptions {
  /** A short name, shown in its availability note. */
  name: string;
  tables: CentreTable[];
  /** Port on 127.0.0.1 (default: any free one). */
  port?: number;
  /** Path of the TAP base (default /tap). */
  path?: string;
  limits?: Partial<CentreLimits>;
}

/** A running centre. */
export interface Centre {
  name: string;
  /** The TAP base URL, e.g. http://127.0.0.1:41234/tap. */
  url: string;
  tables: readonly CentreTable[];
  limits: CentreLimits;
  /** Every query answered, with rows and bytes. */
  ledger: QueryLedger;
  close(): Promise<void>;
}

const DEFAULT_LIMITS: CentreLimits = { maxRec: 500_000, hardMaxRec: 500_000, uploadLimitBytes: 64 * 1024 * 1024 };
const UPLOAD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Starts a centre: loads its tables into its database, then listens on 127.0.0.1. */
export async function startCentre(options: CentreOptions): Promise<Centre> {
  const limits: CentreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const path = (options.path ?? '/tap').replace(/\/+$/, '');
  const engine = await QueryEngine.open(options.tables);
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const service = new TapService(options, limits, engine);
  let base = '';
  await app.register(async (scope) => service.routes(scope, () => base), { prefix: path });
  try {
    await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  } catch (err) {
    await engine.close();
    throw err;
  }
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`;
  return {
    name: options.name,
    url: base,
    tables: options.tables,
    limits,
    ledger: service.ledger,
    async close() {
      service.jobs.releaseAll();
      await app.close();
      await engine.close();
    },
  };
}

/** The TAP routes over one engine. */
class TapService {
  readonly ledger = new QueryLedger();
  readonly jobs = new JobStore();
  private readonly records = new Map<string, QueryRecord>();

  constructor(
    private readonly options: CentreOptions,
    private readonly limits: CentreLimits,
    private readonly engine: QueryEngine,
  ) {}

  routes(app: FastifyInstance, base: () => string): void {
    app.removeAllContentTypeParsers();
    // Bodies stay bytes: forms and multipart are parsed here, so an upload's exact size is known.
    const bodyLimit = this.limits.uploadLimitBytes * 2 + 1024 * 1024;
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      void reply.code(err.statusCode ?? 500).type('application/x-votable+xml').send(errorVotable(err.message));
    });

    app.get('/capabilities', async (_req, reply) => reply.type('text/xml').send(capabilitiesXml(base(), this.limits)));
    app.get('/availability', async (_req, reply) => {
      const rows = this.options.tables.reduce((n, t) => n + rowCount(t), 0);
      return reply.type('text/xml').send(availabilityXml(`${this.options.name}: ${rows} rows in ${this.options.tables.length} tables, accepting queries`));
    });
    app.get('/tables', async (_req, reply) => reply.type('text/xml').send(tablesetXml(this.options.tables)));
    app.get('/tables/:name', async (req, reply) => {
      const name = (req.params as { name: string }).name.toLowerCase();
      const table = this.options.tables.find((t) => t.name.toLowerCase() === name);
      if (!table) return reply.code(404).type('text/plain').send(`no table ${name}`);
      return reply.type('text/xml').send(tableDetailXml(table));
    });

    const sync = async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        const params = this.params(req);
        const { answer, record } = await this.answer('sync', params);
        record.bytesSent += answer.body.length;
        return reply.type(answer.contentType).send(answer.body);
      } catch (err) {
        return fail(reply, err);
      }
    };
    app.get('/sync', sync);
    app.post('/sync', sync);

    app.get('/async', async (req, reply) => {
      const after = (req.query as Record<string, string | undefined>).AFTER;
      const since = after === undefined ? undefined : new Date(after);
      if (since !== undefined && Number.isNaN(since.getTime())) return fail(reply, new TapFault(`AFTER is not a date: ${after}`));
      return reply.type('text/xml').send(jobListXml(`${base()}/async`, this.jobs.list(since)));
    });
    app.post('/async', async (req, reply) => {
      try {
        const params = this.params(req);
        const job = this.jobs.create(params.values, params.parts, params.bytesIn);
        if (params.values.get('PHASE')?.toUpperCase() === 'RUN') this.start(job);
        return reply.code(303).header('location', `${base()}/async/${job.id}`).send();
      } catch (err) {
        return fail(reply, err);
      }
    });
    app.get('/async/:id', async (req, reply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      const wait = Number((req.query as Record<string, string | undefined>).WAIT ?? 0);
      if (Number.isFinite(wait)) await waitForChange(job, wait);
      return reply.type('text/xml').send(jobXml(`${base()}/async/${job.id}`, job));
    });
    const remove = async (req: FastifyRequest, reply: FastifyReply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      this.jobs.delete(job.id);
      this.records.delete(job.id);
      return reply.code(303).header('location', `${base()}/async`).send();
    };
    app.delete('/async/:id', remove);
    app.post('/async/:id', async (req, reply) => {
      const action = this.params(req).values.get('ACTION')?.toUpperCase();
      if (action === 'DELETE') return remove(req, reply);
      return fail(reply, new TapFault(`unsupported ACTION ${action ?? '(none)'}`));
    });
    app.get('/async/:id/phase', async (req, reply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      return reply.type('text/plain').send(job.phase);
    });
    app.post('/async/:id/phase', async (req, reply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      const phase = this.params(req).values.get('PHASE')?.toUpperCase();
      if (phase === 'RUN') {
        if (job.phase === 'PENDING') this.start(job);
      } else if (phase === 'ABORT') {
        if (isActive(job)) setPhase(job, 'ABORTED');
      } else {
        return fail(reply, new TapFault(`unsupported PHASE ${phase ?? '(none)'}`));
      }
      return reply.code(303).header('location', `${base()}/async/${job.id}`).send();
    });
    app.get('/async/:id/results/result', async (req, reply) => {
      const job = this.job(req);
      if (!job?.result) return reply.code(404).type('text/plain').send('no result');
      const record = this.records.get(job.id);
      if (record) record.bytesSent += job.result.body.length;
      return reply.type(job.result.contentType).send(job.result.body);
    });
    app.get('/async/:id/error', async (req, reply) => {
      const job = this.job(req);
      if (!job?.error) return reply.code(404).type('text/plain').send('no error');
      return reply.type('application/x-votable+xml').send(errorVotable(job.error));
    });
  }

  private job(req: FastifyRequest): UwsJob | undefined {
    return this.jobs.get((req.params as { id: string }).id);
  }

  private params(req: FastifyRequest): TapParams {
    return requestParams(req.query, req.body, req.headers['content-type']);
  }

  /** QUEUED now; EXECUTING when the engine takes it (queries run one at a time); then COMPLETED or ERROR. */
  private start(job: UwsJob): void {
    setPhase(job, 'QUEUED');
    const params: TapParams = { values: job.params, parts: job.parts, bytesIn: job.bytesIn };
    this.answer('async', params, job).then(
      ({ answer, record }) => {
        this.records.set(job.id, record);
        if (job.phase !== 'EXECUTING') return;
        job.result = { contentType: answer.contentType, body: answer.body };
        setPhase(job, 'COMPLETED');
      },
      (err: Error) => {
        if (!isActive(job)) return;
        job.error = err.message;
        setPhase(job, 'ERROR');
      },
    );
  }

  /** Runs one query, recording it in the ledger. */
  private async answer(mode: QueryRecord['mode'], params: TapParams, job?: UwsJob): Promise<{ answer: QueryAnswer; record: QueryRecord }> {
    const adql = params.values.get('QUERY') ?? '';
    const uploadNames = (params.values.get('UPLOAD') ?? '').split(';').map((s) => s.split(',')[0].trim()).filter((s) => s !== '');
    const record = this.ledger.open(mode, adql, uploadNames, params.bytesIn);
    const started = Date.now();
    try {
      const request = queryRequest(params, this.limits);
      const answer = await this.engine.run({
        ...request,
        // An async job is EXECUTING from when the engine takes it; one aborted while queued is not run.
        ...(job ? { onStart: () => (job.phase === 'QUEUED' ? (setPhase(job, 'EXECUTING'), true) : false) } : {}),
      });
      record.sql = answer.sql;
      record.rowsOut = answer.rows;
      record.bytesOut = answer.body.length;
      record.uploadRows = answer.uploadRows;
      record.overflow = answer.overflow;
      return { answer, record };
    } catch (err) {
      record.error = (err as Error).message;
      throw err;
    } finally {
      record.durationMs = Date.now() - started;
    }
  }
}

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  const status = err instanceof TapFault ? err.status : 500;
  return reply.code(status).type('application/x-votable+xml').send(errorVotable((err as Error).message));
}

const BINARY2 = new Set(['votable', 'votable/b2', 'binary2', 'application/x-votable+xml', 'text/xml', 'application/x-votable+xml;serialization=binary2']);
const TABLEDATA = new Set(['votable/td', 'tabledata', 'application/x-votable+xml;serialization=tabledata']);

/** The query a request asks for, checked against DALI/TAP and the centre's limits. */
export function queryRequest(params: TapParams, limits: CentreLimits): QueryRequest {
  const v = params.values;
  const request = v.get('REQUEST');
  if (request !== undefined && request !== 'doQuery') throw new TapFault(`unsupported REQUEST ${request}`);
  const lang = v.get('LANG') ?? 'ADQL';
  if (!/^ADQL(-2\.[01])?$/i.test(lang)) throw new TapFault(`unsupported LANG ${lang}: this service speaks ADQL`);
  const adql = v.get('QUERY');
  if (!adql) throw new TapFault('missing QUERY parameter');
  const format = (v.get('RESPONSEFORMAT') ?? v.get('FORMAT') ?? 'votable').toLowerCase().replace(/\s+/g, '');
  const serialization = BINARY2.has(format) ? 'BINARY2' : TABLEDATA.has(format) ? 'TABLEDATA' : undefined;
  if (serialization === undefined) throw new TapFault(`unsupported RESPONSEFORMAT ${format}: votable (BINARY2) or votable/td (TABLEDATA)`);
  const maxrecText = v.get('MAXREC');
  const asked = maxrecText === undefined ? limits.maxRec : Number(maxrecText);
  if (!Number.isInteger(asked) || asked < 0) throw new TapFault(`MAXREC must be a non-negative integer, not ${maxrecText}`);
  const uploads: QueryRequest['uploads'] = [];
  for (const spec of (v.get('UPLOAD') ?? '').split(';').filter((s) => s.trim() !== '')) {
    const [name, ref] = spec.split(',').map((s) => s.trim());
    if (!name || !UPLOAD_NAME.test(name)) throw new TapFault(`UPLOAD ${spec}: the table name must be an ADQL regular identifier`);
    if (!ref?.startsWith('param:')) throw new TapFault(`UPLOAD ${spec}: only inline uploads (param:) are accepted; this service fetches no URLs`);
    const votable = params.parts.get(ref.slice('param:'.length));
    if (!votable) throw new TapFault(`UPLOAD ${name}: the request has no part named ${ref.slice('param:'.length)}`);
    if (votable.length > limits.uploadLimitBytes) throw new TapFault(`UPLOAD ${name}: ${votable.length} bytes exceed the upload limit of ${limits.uploadLimitBytes} bytes`, 413);
    uploads.push({ name, votable });
  }
  return { adql, maxrec: Math.min(asked, limits.hardMaxRec), serialization, uploads };
}
