/**
 * A simulated CADC/CANFAR: the registry's resource-caps, skaha v1 (images, contexts, cluster
 * stats, headless sessions that move Pending → Running → Succeeded) behind a bearer token,
 * and the argus TAP service's VOSI documents. Documents are written for this project in the
 * shapes the real services serve.
 */
import { SimSite } from './sim-site.js';

/** One skaha session as the simulator keeps it. */
export interface SimSession {
  id: string;
  name: string;
  image: string;
  type: string;
  cores: number;
  ram: number;
  gpus: number;
  cmd?: string;
  args?: string;
  env: string[];
  createdAt: number;
  /** Set when the session is to end in Failed instead of Succeeded. */
  fail?: boolean;
}

export interface CanfarSiteOptions {
  /** The bearer token skaha accepts. */
  token?: string;
  /** How long a new session stays Pending, then Running (ms). */
  pendingMs?: number;
  runningMs?: number;
  /** Spell terminal states the Session.java way (Completed/Failed) instead of Succeeded/Error. */
  javaStatusWords?: boolean;
}

/** The images the simulated skaha lists (digests are made up but well-formed). */
export const SIM_SKAHA_IMAGES = [
  { id: 'images.canfar.net/skaha/astroml:24.07', types: ['notebook', 'headless'], digest: `sha256:${'a1'.repeat(32)}` },
  { id: 'images.canfar.net/skaha/base-notebook:latest', types: ['notebook'], digest: `sha256:${'b2'.repeat(32)}` },
  { id: 'images.canfar.net/skaha/terminal:1.1.2', types: ['headless', 'desktop-app'], digest: `sha256:${'c3'.repeat(32)}` },
  { id: 'images.canfar.net/skaha/desktop:1.0', types: ['desktop'], digest: 'not-a-digest' },
  { id: 'images.canfar.net/skaha/carta:4.1', types: ['carta'], digest: `sha256:${'d4'.repeat(32)}` },
];

/** The resource contexts the simulated skaha offers. */
export const SIM_SKAHA_CONTEXT = {
  cores: { default: 2, defaultRequest: 1, defaultLimit: 16, defaultHeadless: 1, options: [1, 2, 4, 8, 16] },
  memoryGB: { default: 8, defaultRequest: 4, defaultLimit: 192, defaultHeadless: 4, options: [1, 2, 4, 8, 16, 32, 64, 128, 192] },
  gpus: { options: [0, 1, 2] },
  maxInteractiveSessions: 3,
};

/** Cluster totals behind `view=stats`. */
export const SIM_CLUSTER = { cores: 512, ramGb: 4096, baseRequestedCores: 100, baseRequestedRamGb: 1000, nodeCores: 64, nodeRam: '256G' };

/** A CADC registry + skaha + argus on one loopback server. */
export class CanfarSite extends SimSite {
  readonly token: string;
  readonly sessions = new Map<string, SimSession>();
  /** When false, skaha's availability says it is down. */
  available = true;
  /** Staging: bearer token → CADC user name (the constructor's token is 'simuser'). */
  readonly vaultAccounts = new Map<string, string>();
  /** Staging: files written into each user's vault home (user → file name → bytes and type). */
  readonly vaultFiles = new Map<string, Map<string, { data: Buffer; contentType: string }>>();
  private readonly transfers = new Map<string, { user: string; file: string }>();
  private readonly pendingMs: number;
  private readonly runningMs: number;
  private readonly javaWords: boolean;
  private nextId = 1;

  constructor(options: CanfarSiteOptions = {}) {
    super();
    this.token = options.token ?? 'canfar-test-token';
    this.pendingMs = options.pendingMs ?? 150;
    this.runningMs = options.runningMs ?? 300;
    this.javaWords = options.javaStatusWords ?? false;
    this.vaultAccounts.set(this.token, 'simuser');
    this.routes();
    this.vaultRoutes();
  }

  /** The site URL as federation.yaml gives it (the registry base). */
  get registryUrl(): string {
    return `${this.url}/reg`;
  }

  /** The status skaha reports for a session now. */
  statusOf(s: SimSession, now = Date.now()): string {
    const age = now - s.createdAt;
    if (age < this.pendingMs) return 'Pending';
    if (age < this.pendingMs + this.runningMs) return 'Running';
    if (s.fail) return this.javaWords ? 'Failed' : 'Error';
    return this.javaWords ? 'Completed' : 'Succeeded';
  }

  private routes(): void {
    const app = this.app;
    const xml = 'application/xml; charset=utf-8';

    app.get('/reg/resource-caps', async (_req, reply) => reply.type('text/plain; charset=utf-8').send(this.resourceCaps()));
    app.get('/skaha/capabilities', async (_req, reply) => reply.type(xml).send(this.skahaCapabilities()));
    app.get('/skaha/availability', async (_req, reply) => reply.type(xml).send(availabilityXml(this.available)));
    app.get('/argus/capabilities', async (_req, reply) => reply.type(xml).send(this.tapCapabilities('argus', true)));
    app.get('/youcat/capabilities', async (_req, reply) => reply.type(xml).send(this.tapCapabilities('youcat', false)));
    app.get('/argus/availability', async (_req, reply) => reply.type(xml).send(availabilityXml(true)));
    app.get('/argus/tables', async (_req, reply) => reply.type(xml).send(ARGUS_TABLES));

    // skaha v1 needs the bearer token; VOSI endpoints above stay public, as at CADC.
    app.addHook('preHandler', async (req, reply) => {
      if (!req.url.startsWith('/skaha/v1/')) return;
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        return reply.code(401).header('www-authenticate', 'Bearer').type('text/plain').send('authentication required');
      }
    });

    const json = (reply: import('fastify').FastifyReply, body: unknown) => this.sendJson(reply, JSON.stringify(body));

    app.get('/skaha/v1/image', async (_req, reply) => json(reply, SIM_SKAHA_IMAGES));
    app.get('/skaha/v1/context', async (_req, reply) => json(reply, SIM_SKAHA_CONTEXT));
    app.get('/skaha/v1/session', async (req, reply) => {
      const q = req.query as Record<string, string | undefined>;
      if (q.view === 'stats') return json(reply, this.stats());
      return json(reply, [...this.sessions.values()].map((s) => this.sessionJson(s)));
    });
    app.post('/skaha/v1/session', async (req, reply) => {
      const params = new URL(req.url, 'http://x').searchParams;
      const name = params.get('name');
      const image = params.get('image');
      if (!name || !image) return reply.code(400).type('text/plain').send('name and image are required');
      if (!SIM_SKAHA_IMAGES.some((i) => i.id === image)) return reply.code(400).type('text/plain').send(`image not found: ${image}`);
      const cores = Number(params.get('cores') ?? SIM_SKAHA_CONTEXT.cores.defaultHeadless);
      const ram = Number(params.get('ram') ?? SIM_SKAHA_CONTEXT.memoryGB.defaultHeadless);
      const gpus = Number(params.get('gpus') ?? 0);
      if (!SIM_SKAHA_CONTEXT.cores.options.includes(cores)) return reply.code(400).type('text/plain').send(`cores ${cores} is not an option`);
      if (!SIM_SKAHA_CONTEXT.memoryGB.options.includes(ram)) return reply.code(400).type('text/plain').send(`ram ${ram} is not an option`);
      const type = params.get('type') ?? 'notebook';
      const id = `s${(this.nextId++).toString(36).padStart(7, '0')}`;
      this.sessions.set(id, {
        id, name, image, type, cores, ram, gpus,
        cmd: params.get('cmd') ?? undefined,
        args: params.get('args') ?? undefined,
        env: params.getAll('env'),
        createdAt: Date.now(),
        fail: params.getAll('env').includes('SIM_FAIL=1'),
      });
      return reply.type('text/plain').send(`${id}\n`);
    });
    app.get('/skaha/v1/session/:id', async (req, reply) => {
      const s = this.sessions.get((req.params as { id: string }).id);
      if (!s) return reply.code(404).type('text/plain').send('session not found');
      return json(reply, this.sessionJson(s));
    });
    app.delete('/skaha/v1/session/:id', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      if (!this.sessions.delete(id)) return reply.code(404).type('text/plain').send('session not found');
      return reply.code(200).send();
    });
  }

  /**
   * The user's VOSpace (vault) and the access-control whoami, as the vos client uses them:
   * GET /ac/whoami redirects to /ac/users/{name}?idType=HTTP; POST /vault/synctrans takes a
   * vos:transfer (pushToVoSpace) and redirects to its transfer document, whose httpsput endpoint
   * takes the bytes with PUT. Only the credential's own user may write under vos://cadc.nrc.ca~vault/{user}/.
   */
  private vaultRoutes(): void {
    const app = this.app;
    const xml = 'application/xml; charset=utf-8';
    const userOf = (req: import('fastify').FastifyRequest) => {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      return m ? this.vaultAccounts.get(m[1]) : undefined;
    };
    const unauthorised = (reply: import('fastify').FastifyReply) => reply.code(401).header('www-authenticate', 'Bearer').type('text/plain').send('authentication required');
    const cap = (id: string, url: string) => `  <capability standardID="${id}">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.0">
      <accessURL use="base">${url}</accessURL>
      <securityMethod standardID="ivo://ivoa.net/sso#cookie"/>
      <securityMethod standardID="ivo://ivoa.net/sso#tls-with-certificate"/>
      <securityMethod standardID="ivo://ivoa.net/sso#token"/>
    </interface>
  </capability>`;
    const caps = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
${body}
</vosi:capabilities>
`;
    for (const type of ['text/xml', 'text/csv', 'application/x-votable+xml']) {
      app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: 16 * 1024 * 1024 }, (_req, body, done) => done(null, body));
    }
    app.get('/vault/capabilities', async (_req, reply) => reply.type(xml).send(caps([
      cap('ivo://ivoa.net/std/VOSpace/v2.0#nodes', `${this.url}/vault/nodes`),
      cap('ivo://ivoa.net/std/VOSpace#sync-2.1', `${this.url}/vault/synctrans`),
    ].join('\n'))));
    app.get('/ac/capabilities', async (_req, reply) => reply.type(xml).send(caps(cap('ivo://ivoa.net/std/UMS#whoami-0.1', `${this.url}/ac/whoami`))));
    app.get('/ac/whoami', async (req, reply) => {
      const user = userOf(req);
      if (user === undefined) return unauthorised(reply);
      return reply.redirect(`${this.url}/ac/users/${encodeURIComponent(user)}?idType=HTTP`, 302);
    });
    app.post('/vault/synctrans', async (req, reply) => {
      const user = userOf(req);
      if (user === undefined) return unauthorised(reply);
      const doc = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
      const target = /<vos:target>([^<]*)<\/vos:target>/.exec(doc)?.[1];
      const direction = /<vos:direction>([^<]*)<\/vos:direction>/.exec(doc)?.[1];
      if (!target || direction !== 'pushToVoSpace') return reply.code(400).type('text/plain').send('InvalidArgument: a pushToVoSpace transfer with a target is required');
      const m = /^vos:\/\/cadc\.nrc\.ca~vault\/([^/]+)\/([^/]+)$/.exec(target);
      if (!m) return reply.code(400).type('text/plain').send('InvalidURI');
      const [owner, file] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
      if (owner !== user) return reply.code(403).type('text/plain').send('PermissionDenied');
      const id = `t${this.transfers.size + 1}x${Math.random().toString(36).slice(2, 8)}`;
      this.transfers.set(id, { user, file });
      return reply.redirect(`${this.url}/vault/xfer/${id}`, 303);
    });
    app.get('/vault/xfer/:id', async (req, reply) => {
      const t = this.transfers.get((req.params as { id: string }).id);
      if (!t) return reply.code(404).type('text/plain').send('NotFound');
      if (userOf(req) !== t.user) return unauthorised(reply);
      const id = (req.params as { id: string }).id;
      return reply.type(xml).send(`<?xml version="1.0" encoding="UTF-8"?>
<vos:transfer xmlns:vos="http://www.ivoa.net/xml/VOSpace/v2.0" version="2.1">
  <vos:target>vos://cadc.nrc.ca~vault/${t.user}/${t.file}</vos:target>
  <vos:direction>pushToVoSpace</vos:direction>
  <vos:protocol uri="ivo://ivoa.net/vospace/core#httpsput">
    <vos:endpoint>${this.url}/vault/put/${id}</vos:endpoint>
    <vos:securityMethod uri="ivo://ivoa.net/sso#token"/>
  </vos:protocol>
</vos:transfer>
`);
    });
    app.put('/vault/put/:id', async (req, reply) => {
      const t = this.transfers.get((req.params as { id: string }).id);
      if (!t) return reply.code(404).type('text/plain').send('NotFound');
      if (userOf(req) !== t.user) return unauthorised(reply);
      const files = this.vaultFiles.get(t.user) ?? new Map<string, { data: Buffer; contentType: string }>();
      files.set(t.file, { data: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), contentType: String(req.headers['content-type'] ?? '') });
      this.vaultFiles.set(t.user, files);
      return reply.code(201).send();
    });
  }

  private resourceCaps(): string {
    return [
      '# simulated CADC registry',
      `ivo://cadc.nrc.ca/reg = ${this.url}/reg/capabilities`,
      '',
      '# science platform',
      `ivo://cadc.nrc.ca/skaha = ${this.url}/skaha/capabilities`,
      `ivo://cadc.nrc.ca/youcat = ${this.url}/youcat/capabilities`,
      `ivo://cadc.nrc.ca/argus = ${this.url}/argus/capabilities`,
      `ivo://cadc.nrc.ca/minoc = ${this.url}/minoc/capabilities`,
      `ivo://cadc.nrc.ca/vault = ${this.url}/vault/capabilities`,
      `ivo://cadc.nrc.ca/gms = ${this.url}/ac/capabilities`,
      '',
    ].join('\n');
  }

  private skahaCapabilities(): string {
    const base = `${this.url}/skaha`;
    const iface = (url: string, methods: string[]) =>
      methods
        .map((m) => `    <interface xsi:type="vs:ParamHTTP" role="std" version="1.0">
      <accessURL use="base">${url}</accessURL>
      <securityMethod standardID="ivo://ivoa.net/sso#${m}"/>
    </interface>`)
        .join('\n');
    const cap = (id: string, url: string, methods: string[]) => `  <capability standardID="${id}">\n${iface(url, methods)}\n  </capability>`;
    return `<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1">
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="full">${base}/capabilities</accessURL></interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#availability">
    <interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="full">${base}/availability</accessURL></interface>
  </capability>
${cap('vos://cadc.nrc.ca~vospace/CADC/std/Proc#sessions-1.0', `${base}/v0`, ['cookie', 'token'])}
${cap('http://www.opencadc.org/std/platform#session-1', `${base}/v1/session`, ['cookie', 'tls-with-certificate', 'token'])}
${cap('http://www.opencadc.org/std/platform#image-1', `${base}/v1/image`, ['cookie', 'tls-with-certificate', 'token'])}
${cap('http://www.opencadc.org/std/platform#context-1', `${base}/v1/context`, ['cookie', 'tls-with-certificate', 'token'])}
${cap('http://www.opencadc.org/std/platform#repository-1', `${base}/v1/repository`, ['cookie', 'tls-with-certificate', 'token'])}
</vosi:capabilities>
`;
  }

  private tapCapabilities(name: string, anonymous: boolean): string {
    const base = `${this.url}/${name}`;
    const security = `${anonymous ? '<securityMethod/>' : ''}
      <securityMethod standardID="ivo://ivoa.net/sso#cookie"/>
      <securityMethod standardID="ivo://ivoa.net/sso#tls-with-certificate"/>${anonymous ? '' : '\n      <securityMethod standardID="ivo://ivoa.net/sso#token"/>'}`;
    return `<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="full">${base}/capabilities</accessURL></interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#availability">
    <interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="full">${base}/availability</accessURL></interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#tables-1.1">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">${base}/tables</accessURL></interface>
  </capability>
  <capability xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">
      <accessURL use="base">${base}</accessURL>
      ${security}
    </interface>
    <language>
      <name>ADQL</name>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
      <description>ADQL-2.0</description>
    </language>
    <outputFormat><mime>application/x-votable+xml</mime><alias>votable</alias></outputFormat>
    <outputFormat><mime>text/csv</mime><alias>csv</alias></outputFormat>
    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>
    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>
    <outputLimit><default unit="row">10000000</default><hard unit="row">20000000</hard></outputLimit>
    <uploadLimit><hard unit="byte">100000000</hard></uploadLimit>
  </capability>
</vosi:capabilities>
`;
  }

  private stats(): object {
    const active = [...this.sessions.values()].filter((s) => ['Pending', 'Running'].includes(this.statusOf(s)));
    const cores = SIM_CLUSTER.baseRequestedCores + active.reduce((n, s) => n + s.cores, 0);
    const ram = SIM_CLUSTER.baseRequestedRamGb + active.reduce((n, s) => n + s.ram, 0);
    return {
      instances: { session: 12, desktopApp: 3, headless: active.filter((s) => s.type === 'headless').length, total: 15 + active.length },
      cores: { requestedCPUCores: cores, cpuCoresAvailable: SIM_CLUSTER.cores, maxCPUCores: { cpuCores: SIM_CLUSTER.nodeCores, withRam: SIM_CLUSTER.nodeRam } },
      ram: { requestedRAM: `${ram}G`, ramAvailable: `${SIM_CLUSTER.ramGb}G`, maxRAM: { ram: SIM_CLUSTER.nodeRam, withCPUCores: SIM_CLUSTER.nodeCores } },
    };
  }

  private sessionJson(s: SimSession): object {
    return {
      id: s.id,
      userid: 'simuser',
      runAsUID: '20001',
      runAsGID: '20001',
      image: s.image,
      type: s.type,
      status: this.statusOf(s),
      name: s.name,
      startTime: new Date(s.createdAt).toISOString(),
      expiryTime: new Date(s.createdAt + 345_600_000).toISOString(),
      connectURL: 'not-applicable',
      requestedRAM: `${s.ram}G`,
      requestedCPUCores: String(s.cores),
      requestedGPUCores: String(s.gpus),
      ramInUse: '<none>',
      cpuCoresInUse: '<none>',
      isFixedResources: true,
    };
  }
}

function availabilityXml(available: boolean): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">
  <vosi:available>${available}</vosi:available>
  <vosi:note>${available ? 'service is accepting requests' : 'scheduled maintenance'}</vosi:note>
</vosi:availability>
`;
}

const col = (name: string, type: string, ucd: string, extra = '') =>
  `      <column>
        <name>${name}</name>
        <ucd>${ucd}</ucd>${extra}
        <dataType xsi:type="vs:TAPType"${type === 'VARCHAR' ? ' size="64"' : ''}>${type}</dataType>
      </column>`;

const ARGUS_TABLES = `<?xml version="1.0" encoding="UTF-8"?>
<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <schema>
    <name>caom2</name>
    <description>Common Archive Observation Model, version 2.4</description>
    <table type="table">
      <name>caom2.Observation</name>
      <description>the main CAOM Observation table</description>
${col('obsID', 'CHAR', 'meta.id;meta.main', '\n        <description>UUID</description>')}
${col('collection', 'VARCHAR', 'meta.id;obs.collection')}
${col('observationID', 'VARCHAR', 'meta.id')}
${col('target_name', 'VARCHAR', 'meta.id;src')}
${col('instrument_name', 'VARCHAR', 'meta.id;instr')}
    </table>
    <table type="table">
      <name>caom2.Plane</name>
      <description>the products of an observation</description>
${col('planeID', 'CHAR', 'meta.id;meta.main')}
${col('obsID', 'CHAR', 'meta.id')}
${col('productID', 'VARCHAR', 'meta.id')}
${col('calibrationLevel', 'INTEGER', 'meta.code;obs.calib')}
${col('dataProductType', 'VARCHAR', 'meta.code.class')}
    </table>
  </schema>
  <schema>
    <name>ivoa</name>
    <table type="view">
      <name>ivoa.ObsCore</name>
      <description>ObsCore-1.1 view of CAOM</description>
${col('obs_id', 'VARCHAR', 'meta.id')}
${col('s_ra', 'DOUBLE', 'pos.eq.ra', '\n        <unit>deg</unit>')}
${col('s_dec', 'DOUBLE', 'pos.eq.dec', '\n        <unit>deg</unit>')}
${col('s_region', 'VARCHAR', 'pos.outline;obs.field')}
    </table>
  </schema>
  <schema>
    <name>tap_schema</name>
    <table type="table">
      <name>tap_schema.tables</name>
${col('table_name', 'VARCHAR', 'meta.id')}
    </table>
  </schema>
</vosi:tableset>
`;
