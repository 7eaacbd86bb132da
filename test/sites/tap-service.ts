/**
 * A standards TAP service (TAP 1.1, VOSI 1.1, UWS 1.1, TAPRegExt 1.0) mounted on a SimSite.
 * Queries run for real: each table is filled with deterministic synthetic rows in an
 * in-memory PGlite and the ADQL is translated with the project's own ADQL → PostgreSQL code.
 */
import { createHash } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseAdql, quoteIdentifier, toPostgres } from '../../adapters/ivoa/adql/index.js';
import { readVOTableToArray, writeVOTable, type Cell, type Datatype, type Row, type WritableField } from '../../adapters/ivoa/votable/index.js';
import type { SimSite } from './sim-site.js';
import { seededRandom } from '../support/random.js';

export interface SimColumn { name: string; datatype: 'long' | 'int' | 'short' | 'double' | 'float' | 'char' | 'boolean'; unit?: string; ucd?: string; description?: string }
export interface SimTable { name: string /* 'schema.table' as the site spells it, e.g. 'gaiadr3.gaia_source' or 'dbo.MeanObjectView' */; description?: string; columns: SimColumn[]; rows: number /* as VOSI advertises it */; heldRows?: number /* rows generated and queried (default rows), so a table can advertise billions */; position?: { ra: string; dec: string }; region?: { raMin: number; raMax: number; decMin: number; decMax: number }; planted?: Row[] /* rows held after the generated ones (known pairs), one cell per column */ }
export interface TapServiceOptions {
  path: string /* mount prefix such as '/tap' or '/tap-server/tap' */;
  tables: SimTable[];
  maxRec?: number;
  hardMaxRec?: number;
  uploadLimitBytes?: number;
  tablesDetail?: 'full' | 'min';
  securityMethods?: string[] /* standardIDs; default anonymous */;
  authorize?: (headers: Record<string, string | string[] | undefined>) => boolean;
  /** Extra: how long an async job sits QUEUED before it executes (default 30 ms). */
  asyncDelayMs?: number;
  /** Extra: write /tables the ESA TAP+ way (VODataService root, esatapplus:size, ?only_tables=true). */
  esaTapPlus?: boolean;
}
/** The documents a hostile test may replace: the tableset, a UWS job, a query result (sync or async). */
export type HostileDocument = 'tables' | 'job' | 'result';
export interface TapService {
  readonly path: string;
  /** Hostile modes: what the service sends instead of each document (given the honest one); clear a key to restore it. */
  hostile: Partial<Record<HostileDocument, (honest: string) => string>>;
  close(): Promise<void>;
}

/** The synthetic rows of a table as the service holds them (same generator, same seed). */
export function simRows(table: SimTable): Row[] {
  const rand = seededRandom(seedOf(table.name));
  const region = table.region ?? { raMin: 0, raMax: 360, decMin: -90, decMax: 90 };
  const sinMin = Math.sin((region.decMin * Math.PI) / 180);
  const sinMax = Math.sin((region.decMax * Math.PI) / 180);
  const out: Row[] = [];
  for (let i = 0; i < (table.heldRows ?? table.rows); i++) {
    const ra = region.raMin + rand() * (region.raMax - region.raMin);
    // Uniform on the sphere: uniform in sin(dec).
    const dec = (Math.asin(sinMin + rand() * (sinMax - sinMin)) * 180) / Math.PI;
    out.push(
      table.columns.map((c, j): Cell => {
        if (table.position && c.name === table.position.ra) return ra;
        if (table.position && c.name === table.position.dec) return dec;
        const r = rand();
        switch (c.datatype) {
          case 'long':
            // Gaia-like identifiers beyond 2^53, unique per row.
            return j === 0 ? 4_295_098_369n * BigInt(i + 1) + 17n : BigInt(Math.floor(r * 1e12));
          case 'int':
            return j === 0 ? i + 1 : Math.floor(r * 1000);
          case 'short':
            return Math.floor(r * 100);
          case 'double':
            return 10 + r * 11;
          case 'float':
            return Math.fround(10 + r * 11);
          case 'char':
            return `${c.name}_${i}`;
          case 'boolean':
            return r < 0.5;
        }
      }),
    );
  }
  return out;
}

/** Register the TAP routes on `site.app`; call before site.start(). */
export function mountTapService(site: SimSite, options: TapServiceOptions): TapService {
  const svc = new TapServiceImpl(options);
  void site.app.register(async (app) => svc.routes(app), { prefix: options.path });
  return svc;
}

// --- helpers --------------------------------------------------------------------------------

function seedOf(s: string): number {
  return createHash('sha1').update(s).digest().readUInt32LE(0);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function splitTable(name: string): [string, string] {
  const i = name.indexOf('.');
  return i < 0 ? ['public', name] : [name.slice(0, i), name.slice(i + 1)];
}

const PG_TYPE: Record<SimColumn['datatype'], string> = {
  long: 'bigint', int: 'integer', short: 'smallint', double: 'double precision', float: 'real', char: 'text', boolean: 'boolean',
};

const TAP_TYPE: Record<SimColumn['datatype'], string> = {
  long: 'BIGINT', int: 'INTEGER', short: 'SMALLINT', double: 'DOUBLE', float: 'REAL', char: 'VARCHAR', boolean: 'BOOLEAN',
};

const OID_TYPE: Record<number, Datatype> = { 16: 'boolean', 20: 'long', 21: 'short', 23: 'int', 700: 'float', 701: 'double', 1700: 'double' };

function sqlLiteral(v: Cell): string {
  if (v === null) return 'NULL';
  if (typeof v === 'bigint' || typeof v === 'number') return Number.isNaN(v) ? 'NULL' : String(v);
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  return 'NULL';
}

/** A TAP failure answered as a DALI error VOTable. */
class TapFault extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

/** Parsed request parameters: names upper-cased, plus uploaded file parts. */
interface Params {
  values: Map<string, string>;
  files: Map<string, Buffer>;
}

interface QueryOutput {
  body: string;
  contentType: string;
}

interface Job {
  id: string;
  phase: string;
  params: Map<string, string>;
  files: Map<string, Buffer>;
  creationTime: string;
  startTime?: string;
  endTime?: string;
  result?: QueryOutput;
  error?: string;
  changed: Set<() => void>;
  timer?: NodeJS.Timeout;
}

function parseMultipart(body: Buffer, contentType: string): Params {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) throw new TapFault('multipart body without boundary');
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`);
  const out: Params = { values: new Map(), files: new Map() };
  let pos = body.indexOf(boundary);
  while (pos >= 0) {
    const start = pos + boundary.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', start);
    if (headEnd < 0) break;
    const head = body.subarray(start, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headEnd + 4);
    if (next < 0) throw new TapFault('truncated multipart body');
    const content = body.subarray(headEnd + 4, next);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (name !== undefined) {
      if (/filename="/i.test(head)) out.files.set(name, Buffer.from(content));
      else out.values.set(name.toUpperCase(), content.toString('utf8'));
      // Uploads may also reference plain fields (param:x), so keep every part by name.
      if (!out.files.has(name)) out.files.set(name, Buffer.from(content));
    }
    pos = next + 2;
  }
  return out;
}

// --- the service ----------------------------------------------------------------------------

class TapServiceImpl implements TapService {
  readonly path: string;
  hostile: TapService['hostile'] = {};
  private readonly opts: TapServiceOptions;
  private db?: Promise<PGlite>;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly jobs = new Map<string, Job>();
  private nextJob = 1;
  /** Lower-case name → the site's spelling, for every schema, table and column. */
  private readonly spelling = new Map<string, string>();
  private readonly columnMeta = new Map<string, SimColumn>();

  constructor(options: TapServiceOptions) {
    this.opts = options;
    this.path = options.path.replace(/\/+$/, '');
    for (const t of options.tables) {
      const [schema, table] = splitTable(t.name);
      this.spelling.set(schema.toLowerCase(), schema);
      this.spelling.set(table.toLowerCase(), table);
      for (const c of t.columns) {
        this.spelling.set(c.name.toLowerCase(), c.name);
        this.columnMeta.set(c.name.toLowerCase(), c);
      }
    }
  }

  async close(): Promise<void> {
    for (const job of this.jobs.values()) {
      clearTimeout(job.timer);
      // Release requests blocked in WAIT so the server can close.
      for (const f of [...job.changed]) f();
    }
    if (this.db) await (await this.db).close();
  }

  routes(app: FastifyInstance): void {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: 200 * 1024 * 1024 }, (_req, body, done) => done(null, body));
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.addHook('onRequest', async (req, reply) => {
      const sub = req.url.slice(this.path.length).split('?')[0];
      if (sub === '/capabilities' || sub === '/availability') return;
      if (this.opts.authorize && !this.opts.authorize(req.headers)) {
        return reply.code(401).header('www-authenticate', 'Basic realm="tap", ivoa_cookie').type('text/plain').send('authentication required');
      }
    });

    app.get('/capabilities', async (req, reply) => this.cached(req, reply, 'text/xml', this.capabilities(req)));
    app.get('/availability', async (_req, reply) =>
      reply.type('text/xml').send(
        '<?xml version="1.0" encoding="UTF-8"?>\n<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">' +
          '<vosi:available>true</vosi:available><vosi:note>service is accepting queries</vosi:note></vosi:availability>',
      ),
    );
    app.get('/tables', async (req, reply) => {
      const q = req.query as Record<string, string | undefined>;
      if (q.tables !== undefined) {
        // ESA TAP+: ?tables=a,b answers a tableset with just those tables, in full.
        const names = q.tables.split(',').map((n) => n.trim().toLowerCase());
        return this.cached(req, reply, 'text/xml', this.tableset(false, this.opts.tables.filter((t) => names.includes(t.name.toLowerCase()))));
      }
      const min = this.opts.tablesDetail === 'min' || q.detail === 'min' || q.only_tables === 'true';
      return this.cached(req, reply, 'text/xml', this.distort('tables', this.tableset(min)));
    });
    app.get('/tables/:name', async (req, reply) => {
      const name = (req.params as { name: string }).name;
      const t = this.opts.tables.find((x) => x.name === name) ?? this.opts.tables.find((x) => x.name.toLowerCase() === name.toLowerCase());
      if (!t) return reply.code(404).type('text/plain').send(`no table ${name}`);
      return this.cached(req, reply, 'text/xml', `<?xml version="1.0" encoding="UTF-8"?>\n${this.tableXml(t, false, true)}`);
    });

    const sync = async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        const params = this.params(req);
        const out = await this.execute(params.values, params.files);
        return reply.type(out.contentType).send(this.distort('result', out.body));
      } catch (err) {
        return this.fail(reply, err);
      }
    };
    app.get('/sync', sync);
    app.post('/sync', sync);

    // UWS 1.1 job list: AFTER filters by creation time; each ref carries its runId and creationTime.
    app.get('/async', async (req, reply) => {
      const after = (req.query as Record<string, string | undefined>).AFTER;
      const refs = [...this.jobs.values()]
        .filter((j) => after === undefined || Date.parse(j.creationTime) > Date.parse(after))
        .map((j) => {
          const runId = j.params.get('RUNID');
          return `<uws:jobref id="${j.id}" xlink:href="${this.base(req)}/async/${j.id}"><uws:phase>${j.phase}</uws:phase>` +
            `${runId === undefined ? '' : `<uws:runId>${esc(runId)}</uws:runId>`}<uws:creationTime>${j.creationTime}</uws:creationTime></uws:jobref>`;
        })
        .join('');
      return reply.type('text/xml').send(`<?xml version="1.0" encoding="UTF-8"?>\n<uws:jobs xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1">${refs}</uws:jobs>`);
    });
    app.post('/async', async (req, reply) => {
      let params: Params;
      try {
        params = this.params(req);
      } catch (err) {
        return this.fail(reply, err);
      }
      const id = `job${this.nextJob++}`;
      const job: Job = { id, phase: 'PENDING', params: params.values, files: params.files, creationTime: new Date().toISOString(), changed: new Set() };
      this.jobs.set(id, job);
      if (params.values.get('PHASE')?.toUpperCase() === 'RUN') this.start(job);
      return reply.code(303).header('location', `${this.base(req)}/async/${id}`).send();
    });
    app.get('/async/:id', async (req, reply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      const wait = Number((req.query as Record<string, string | undefined>).WAIT ?? 0);
      if (wait !== 0 && ['PENDING', 'QUEUED', 'EXECUTING'].includes(job.phase)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            job.changed.delete(done);
            resolve();
          };
          // WAIT=-1 means as long as the server allows; this one allows 30 s.
          const t = setTimeout(done, (wait < 0 ? 30 : Math.min(wait, 30)) * 1000);
          job.changed.add(done);
        });
      }
      return reply.type('text/xml').send(this.distort('job', this.jobXml(req, job)));
    });
    const del = async (req: FastifyRequest, reply: FastifyReply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      clearTimeout(job.timer);
      this.jobs.delete(job.id);
      return reply.code(303).header('location', `${this.base(req)}/async`).send();
    };
    app.delete('/async/:id', del);
    app.post('/async/:id', async (req, reply) => {
      const action = this.formValues(req).get('ACTION')?.toUpperCase();
      if (action === 'DELETE') return del(req, reply);
      return this.fail(reply, new TapFault(`unsupported ACTION ${action ?? '(none)'}`));
    });
    app.get('/async/:id/phase', async (req, reply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      return reply.type('text/plain').send(job.phase);
    });
    app.post('/async/:id/phase', async (req, reply) => {
      const job = this.job(req);
      if (!job) return reply.code(404).type('text/plain').send('no such job');
      const phase = this.formValues(req).get('PHASE')?.toUpperCase();
      if (phase === 'RUN') {
        if (job.phase === 'PENDING') this.start(job);
      } else if (phase === 'ABORT') {
        if (['PENDING', 'QUEUED', 'EXECUTING', 'HELD', 'SUSPENDED'].includes(job.phase)) {
          clearTimeout(job.timer);
          this.setPhase(job, 'ABORTED');
        }
      } else {
        return this.fail(reply, new TapFault(`unsupported PHASE ${phase ?? '(none)'}`));
      }
      return reply.code(303).header('location', `${this.base(req)}/async/${job.id}`).send();
    });
    app.get('/async/:id/results/result', async (req, reply) => {
      const job = this.job(req);
      if (!job?.result) return reply.code(404).type('text/plain').send('no result');
      return reply.type(job.result.contentType).send(this.distort('result', job.result.body));
    });
    app.get('/async/:id/error', async (req, reply) => {
      const job = this.job(req);
      if (!job?.error) return reply.code(404).type('text/plain').send('no error');
      return reply.type('application/x-votable+xml').send(this.errorVotable(job.error));
    });
  }

  // --- documents ----------------------------------------------------------------------------

  private distort(document: HostileDocument, honest: string): string {
    const replace = this.hostile[document];
    return replace === undefined ? honest : replace(honest);
  }

  private base(req: FastifyRequest): string {
    return `http://${req.headers.host}${this.path}`;
  }

  private cached(req: FastifyRequest, reply: FastifyReply, type: string, body: string): FastifyReply {
    const etag = `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"`;
    reply.header('etag', etag);
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.type(type).send(body);
  }

  private capabilities(req: FastifyRequest): string {
    const base = this.base(req);
    const methods = this.opts.securityMethods ?? [''];
    const ifaces = methods
      .map((m) => {
        const sec = m === '' || m === 'anonymous' ? '' : `<securityMethod standardID="${esc(m)}"/>`;
        return `<interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">${esc(base)}</accessURL>${sec}</interface>`;
      })
      .join('');
    const simple = (id: string, sub: string) => {
      const inner = methods
        .map((m) => `<interface xsi:type="vs:ParamHTTP"><accessURL use="full">${esc(base)}/${sub}</accessURL>${m === '' || m === 'anonymous' ? '' : `<securityMethod standardID="${esc(m)}"/>`}</interface>`)
        .join('');
      return `<capability standardID="${id}">${inner}</capability>`;
    };
    const limit = (tag: string, def: number | undefined, hard: number | undefined, unit: string) =>
      def === undefined && hard === undefined
        ? ''
        : `<${tag}>${def !== undefined ? `<default unit="${unit}">${def}</default>` : ''}${hard !== undefined ? `<hard unit="${unit}">${hard}</hard>` : ''}</${tag}>`;
    const geo = ['POINT', 'CIRCLE', 'CONTAINS', 'DISTANCE', 'BOX', 'POLYGON', 'INTERSECTS']
      .map((f) => `<feature><form>${f}</form></feature>`)
      .join('');
    const fmt = (mime: string, alias: string[]) => `<outputFormat><mime>${esc(mime)}</mime>${alias.map((a) => `<alias>${a}</alias>`).join('')}</outputFormat>`;
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
      ' xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">' +
      `<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">${ifaces}` +
      '<language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version><version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>' +
      `<description>ADQL</description><languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">${geo}</languageFeatures></language>` +
      fmt('application/x-votable+xml', ['votable']) +
      fmt('application/x-votable+xml;serialization=TABLEDATA', ['votable/td']) +
      fmt('application/x-votable+xml;serialization=BINARY2', ['votable/b2']) +
      fmt('text/csv', ['csv']) +
      '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>' +
      limit('outputLimit', this.opts.maxRec, this.opts.hardMaxRec, 'row') +
      limit('uploadLimit', undefined, this.opts.uploadLimitBytes, 'byte') +
      '</capability>' +
      simple('ivo://ivoa.net/std/VOSI#capabilities', 'capabilities') +
      simple('ivo://ivoa.net/std/VOSI#availability', 'availability') +
      simple(this.opts.esaTapPlus ? 'ivo://ivoa.net/std/VOSI#tables' : 'ivo://ivoa.net/std/VOSI#tables-1.1', 'tables') +
      '</vosi:capabilities>'
    );
  }

  private tableXml(t: SimTable, min: boolean, root = false): string {
    const esa = this.opts.esaTapPlus === true;
    const ns = root ? ' xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' : '';
    const tag = root ? 'vosi:table' : 'table';
    const attrs = esa ? ` esatapplus:size="${t.rows}" esatapplus:size_bytes="${t.rows * t.columns.length * 8}" esatapplus:public="true"` : '';
    let xml = `<${tag}${ns} type="table"${attrs}><name>${esc(t.name)}</name>`;
    if (t.description) xml += `<description>${esc(t.description)}</description>`;
    if (!esa) xml += `<nrows>${t.rows}</nrows>`;
    if (!min) {
      for (const c of t.columns) {
        xml += `<column><name>${esc(c.name)}</name>`;
        if (c.description) xml += `<description>${esc(c.description)}</description>`;
        if (c.unit) xml += `<unit>${esc(c.unit)}</unit>`;
        if (c.ucd) xml += `<ucd>${esc(c.ucd)}</ucd>`;
        xml += `<dataType xsi:type="vs:TAPType"${c.datatype === 'char' ? ' arraysize="*"' : ''}>${TAP_TYPE[c.datatype]}</dataType>`;
        if (t.position && (c.name === t.position.ra || c.name === t.position.dec)) xml += '<flag>indexed</flag>';
        xml += '</column>';
      }
    }
    return `${xml}</${tag}>`;
  }

  private tableset(min: boolean, only?: SimTable[]): string {
    const schemas = new Map<string, SimTable[]>();
    for (const t of only ?? this.opts.tables) {
      const s = splitTable(t.name)[0];
      schemas.set(s, [...(schemas.get(s) ?? []), t]);
    }
    const body = [...schemas]
      .map(([s, ts]) => `<schema${this.opts.esaTapPlus ? ' esatapplus:public="true"' : ''}><name>${esc(s)}</name>${ts.map((t) => this.tableXml(t, min)).join('')}</schema>`)
      .join('');
    const root = this.opts.esaTapPlus
      ? '<vod:tableset xmlns:vod="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:esatapplus="http://esa.int/xml/EsaTapPlus" xsi:type="vod:TableSet">'
      : '<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">';
    return `<?xml version="1.0" encoding="UTF-8"?>\n${root}${body}</${this.opts.esaTapPlus ? 'vod' : 'vosi'}:tableset>`;
  }

  private jobXml(req: FastifyRequest, job: Job): string {
    const params = [...job.params]
      .filter(([k]) => k !== 'PHASE' && k !== 'RUNID')
      .map(([k, v]) => `<uws:parameter id="${esc(k.toLowerCase())}">${esc(v)}</uws:parameter>`)
      .join('');
    const results = job.result ? `<uws:result id="result" xlink:href="${esc(this.base(req))}/async/${job.id}/results/result" mime-type="${esc(job.result.contentType)}"/>` : '';
    const error = job.error
      ? `<uws:errorSummary type="fatal" hasDetail="true"><uws:message>${esc(job.error)}</uws:message></uws:errorSummary>`
      : '';
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1">' +
      `<uws:jobId>${job.id}</uws:jobId>${job.params.has('RUNID') ? `<uws:runId>${esc(job.params.get('RUNID')!)}</uws:runId>` : ''}<uws:ownerId xsi:nil="true"/><uws:phase>${job.phase}</uws:phase>` +
      `<uws:creationTime>${job.creationTime}</uws:creationTime>` +
      (job.startTime ? `<uws:startTime>${job.startTime}</uws:startTime>` : '<uws:startTime xsi:nil="true"/>') +
      (job.endTime ? `<uws:endTime>${job.endTime}</uws:endTime>` : '<uws:endTime xsi:nil="true"/>') +
      '<uws:executionDuration>600</uws:executionDuration><uws:destruction xsi:nil="true"/>' +
      `<uws:parameters>${params}</uws:parameters><uws:results>${results}</uws:results>${error}</uws:job>`
    );
  }

  private errorVotable(message: string): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\n<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">' +
      `<RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">${esc(message)}</INFO></RESOURCE></VOTABLE>`
    );
  }

  private fail(reply: FastifyReply, err: unknown): FastifyReply {
    const status = err instanceof TapFault ? err.status : 400;
    return reply.code(status).type('application/x-votable+xml').send(this.errorVotable((err as Error).message));
  }

  // --- requests -----------------------------------------------------------------------------

  private job(req: FastifyRequest): Job | undefined {
    return this.jobs.get((req.params as { id: string }).id);
  }

  private formValues(req: FastifyRequest): Map<string, string> {
    return this.params(req).values;
  }

  private params(req: FastifyRequest): Params {
    const out: Params = { values: new Map(), files: new Map() };
    for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, string | string[]>)) out.values.set(k.toUpperCase(), Array.isArray(v) ? v[0] : v);
    const type = String(req.headers['content-type'] ?? '');
    if (req.method === 'POST' && req.body !== undefined && req.body !== null) {
      if (/multipart\/form-data/i.test(type)) {
        const mp = parseMultipart(req.body as Buffer, type);
        for (const [k, v] of mp.values) out.values.set(k, v);
        for (const [k, v] of mp.files) out.files.set(k, v);
      } else {
        const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : String(req.body);
        for (const [k, v] of new URLSearchParams(text)) out.values.set(k.toUpperCase(), v);
      }
    }
    return out;
  }

  private setPhase(job: Job, phase: string): void {
    job.phase = phase;
    if (['COMPLETED', 'ERROR', 'ABORTED'].includes(phase)) job.endTime = new Date().toISOString();
    for (const f of [...job.changed]) f();
  }

  private start(job: Job): void {
    this.setPhase(job, 'QUEUED');
    job.timer = setTimeout(() => {
      if (job.phase !== 'QUEUED') return;
      job.startTime = new Date().toISOString();
      this.setPhase(job, 'EXECUTING');
      this.execute(job.params, job.files).then(
        (out) => {
          if (job.phase !== 'EXECUTING') return;
          job.result = out;
          this.setPhase(job, 'COMPLETED');
        },
        (err: Error) => {
          if (job.phase !== 'EXECUTING') return;
          job.error = err.message;
          this.setPhase(job, 'ERROR');
        },
      );
    }, this.opts.asyncDelayMs ?? 30);
  }

  // --- queries ------------------------------------------------------------------------------

  private database(): Promise<PGlite> {
    this.db ??= (async () => {
      const db = new PGlite({ parsers: { 20: (v: string) => BigInt(v) } });
      for (const t of this.opts.tables) {
        const [schema, table] = splitTable(t.name);
        const name = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
        await db.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}; CREATE TABLE ${name} (${t.columns.map((c) => `${quoteIdentifier(c.name)} ${PG_TYPE[c.datatype]}`).join(', ')})`);
        const rows = [...simRows(t), ...(t.planted ?? [])];
        for (let i = 0; i < rows.length; i += 1000) {
          const values = rows.slice(i, i + 1000).map((r) => `(${r.map(sqlLiteral).join(',')})`).join(',');
          await db.exec(`INSERT INTO ${name} VALUES ${values}`);
        }
      }
      return db;
    })();
    return this.db;
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private execute(params: Map<string, string>, files: Map<string, Buffer>): Promise<QueryOutput> {
    const request = params.get('REQUEST');
    if (request !== undefined && request !== 'doQuery') return Promise.reject(new TapFault(`unsupported REQUEST ${request}`));
    const lang = params.get('LANG') ?? 'ADQL';
    if (!/^ADQL(-2\.[01])?$/i.test(lang)) return Promise.reject(new TapFault(`unsupported LANG ${lang}`));
    const adql = params.get('QUERY');
    if (!adql) return Promise.reject(new TapFault('missing QUERY parameter'));
    const format = (params.get('RESPONSEFORMAT') ?? params.get('FORMAT') ?? 'votable').toLowerCase();
    let kind: 'BINARY2' | 'TABLEDATA' | 'CSV';
    if (['votable', 'application/x-votable+xml', 'text/xml', 'votable/b2', 'application/x-votable+xml;serialization=binary2'].includes(format)) kind = 'BINARY2';
    else if (['votable/td', 'tabledata', 'application/x-votable+xml;serialization=tabledata'].includes(format)) kind = 'TABLEDATA';
    else if (['csv', 'text/csv'].includes(format)) kind = 'CSV';
    else return Promise.reject(new TapFault(`unsupported FORMAT ${format}`));
    const maxrecParam = params.get('MAXREC');
    let maxrec = maxrecParam === undefined ? this.opts.maxRec : Number(maxrecParam);
    if (maxrec !== undefined && (!Number.isInteger(maxrec) || maxrec < 0)) return Promise.reject(new TapFault(`invalid MAXREC ${maxrecParam}`));
    if (this.opts.hardMaxRec !== undefined) maxrec = Math.min(maxrec ?? Infinity, this.opts.hardMaxRec);
    return this.serialise(() => this.run(adql, maxrec, kind, params.get('UPLOAD'), files));
  }

  private async run(adql: string, maxrec: number | undefined, kind: 'BINARY2' | 'TABLEDATA' | 'CSV', upload: string | undefined, files: Map<string, Buffer>): Promise<QueryOutput> {
    const db = await this.database();
    const spelling = new Map(this.spelling);
    const created: string[] = [];
    try {
      if (upload) {
        for (const spec of upload.split(';')) {
          const [name, ref] = spec.split(',').map((s) => s.trim());
          if (!name || !ref?.startsWith('param:')) throw new TapFault(`unsupported UPLOAD ${spec}: only inline (param:) uploads`);
          const data = files.get(ref.slice(6));
          if (!data) throw new TapFault(`UPLOAD ${name}: no part named ${ref.slice(6)}`);
          if (this.opts.uploadLimitBytes !== undefined && data.length > this.opts.uploadLimitBytes) {
            throw new TapFault(`UPLOAD ${name}: ${data.length} bytes exceed the upload limit of ${this.opts.uploadLimitBytes} bytes`);
          }
          created.push(await this.createUpload(db, name, data, spelling));
        }
      }
      let sql: string;
      try {
        const ast = parseAdql(adql);
        respell(ast, spelling);
        sql = toPostgres(ast);
      } catch (err) {
        throw new TapFault(`ADQL: ${(err as Error).message}`);
      }
      const limit = maxrec === undefined ? '' : ` LIMIT ${maxrec + 1}`;
      let res;
      try {
        res = await db.query<unknown[]>(`SELECT * FROM (${sql}) AS q${limit}`, [], { rowMode: 'array' });
      } catch (err) {
        throw new TapFault(`query failed: ${(err as Error).message}`);
      }
      const overflow = maxrec !== undefined && res.rows.length > maxrec;
      const rows = (overflow ? res.rows.slice(0, maxrec) : res.rows) as Cell[][];
      const fields: WritableField[] = res.fields.map((f) => {
        const datatype = OID_TYPE[f.dataTypeID] ?? 'char';
        const meta = this.columnMeta.get(f.name.toLowerCase());
        const field: WritableField = { name: f.name, datatype };
        if (datatype === 'char') field.arraysize = '*';
        if (meta?.unit) field.unit = meta.unit;
        if (meta?.ucd) field.ucd = meta.ucd;
        if (meta?.description) field.description = meta.description;
        return field;
      });
      const cells = rows.map((r) => r.map((v, i) => fixCell(v, fields[i].datatype)));
      if (kind === 'CSV') {
        const line = (r: Cell[]) => r.map((v) => (v === null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v))).join(',');
        return { contentType: 'text/csv', body: [fields.map((f) => f.name).join(','), ...cells.map(line)].join('\n') + '\n' };
      }
      const chunks: Buffer[] = [];
      const infos = [{ name: 'QUERY_STATUS', value: 'OK' }];
      const trailing = overflow ? [{ name: 'QUERY_STATUS', value: 'OVERFLOW' }] : [];
      for await (const c of writeVOTable({ name: 'result', fields }, cells, { serialization: kind, infos, trailingInfos: trailing })) chunks.push(Buffer.from(c));
      return { contentType: 'application/x-votable+xml', body: Buffer.concat(chunks).toString('utf8') };
    } finally {
      for (const t of created) await db.exec(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
    }
  }

  private async createUpload(db: PGlite, name: string, data: Buffer, spelling: Map<string, string>): Promise<string> {
    let doc;
    try {
      doc = await readVOTableToArray(data);
    } catch (err) {
      throw new TapFault(`UPLOAD ${name}: ${(err as Error).message}`);
    }
    const table = doc.tables[0];
    if (!table) throw new TapFault(`UPLOAD ${name}: the VOTable holds no table`);
    const pgType = (d: Datatype, arr: string | undefined) =>
      arr !== undefined && d !== 'char' && d !== 'unicodeChar' ? 'text' : ({ long: 'bigint', int: 'integer', short: 'smallint', unsignedByte: 'smallint', double: 'double precision', float: 'real', boolean: 'boolean' } as Record<string, string>)[d] ?? 'text';
    const full = `${quoteIdentifier('TAP_UPLOAD')}.${quoteIdentifier(name)}`;
    await db.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier('TAP_UPLOAD')}; DROP TABLE IF EXISTS ${full}; CREATE TABLE ${full} (${table.meta.fields.map((f) => `${quoteIdentifier(f.name)} ${pgType(f.datatype, f.arraysize)}`).join(', ')})`);
    for (let i = 0; i < table.rows.length; i += 1000) {
      const values = table.rows.slice(i, i + 1000).map((r) => `(${r.map((v) => sqlLiteral(Array.isArray(v) ? JSON.stringify(v) : (v as Cell))).join(',')})`).join(',');
      await db.exec(`INSERT INTO ${full} VALUES ${values}`);
    }
    spelling.set('tap_upload', 'TAP_UPLOAD');
    spelling.set(name.toLowerCase(), name);
    for (const f of table.meta.fields) if (!spelling.has(f.name.toLowerCase())) spelling.set(f.name.toLowerCase(), f.name);
    return full;
  }
}

function fixCell(v: unknown, datatype: Datatype): Cell {
  if (v === null || v === undefined) return null;
  if (datatype === 'long') return typeof v === 'bigint' ? v : BigInt(v as number);
  if (datatype === 'double' || datatype === 'float') return Number(v);
  if (datatype === 'char') return typeof v === 'string' ? v : String(v);
  return v as Cell;
}

/**
 * ADQL regular identifiers are case-insensitive, the tables here are created with the site's
 * exact (possibly mixed-case) spelling: turn each regular identifier that names a known
 * schema, table or column into a delimited one spelt as the site spells it.
 */
function respell(node: unknown, spelling: Map<string, string>): void {
  if (Array.isArray(node)) {
    for (const n of node) respell(n, spelling);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if (typeof o.name === 'string' && typeof o.delimited === 'boolean') {
    if (!o.delimited) {
      const s = spelling.get(o.name.toLowerCase());
      if (s !== undefined) {
        o.name = s;
        o.delimited = true;
      }
    }
    return;
  }
  for (const v of Object.values(o)) respell(v, spelling);
}
