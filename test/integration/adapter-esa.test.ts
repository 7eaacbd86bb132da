import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { createEsaAdapter, sessionCookieOf } from '../../adapters/esa/adapter.js';
import type { AdapterContext, SiteCredential } from '../../registry/model/adapter.js';
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import type { Fault } from '../sites/sim-site.js';
import { startEsaSite, type EsaSite } from '../sites/esa-site.js';
import { simRows } from '../sites/tap-service.js';
import { ESA_TABLES } from '../sites/esa-site.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

let open: EsaSite;
let locked: EsaSite;
let http: HttpClient;
// Short timeouts make the hang fault quick; queries (which start PGlite) use `http`.
let short: HttpClient;

function ctx(s: EsaSite, credential: SiteCredential = { kind: 'anonymous' }): AdapterContext {
  return {
    site: { id: 'esa', name: 'ESA Gaia archive', platform: 'esa', url: s.url, options: { tapPath: '/tap', loginPath: '/login', dataServer: 'https://gea.esac.esa.int/data-server' } },
    credential,
  };
}

beforeAll(async () => {
  [open, locked] = await Promise.all([startEsaSite(), startEsaSite({ requireLogin: true })]);
  http = new HttpClient({ retries: 1, retryBaseMs: 20 });
  short = new HttpClient({ retries: 1, retryBaseMs: 20, headersTimeoutMs: 600, bodyTimeoutMs: 600, connectTimeoutMs: 600 });
});

afterAll(async () => {
  await http.close();
  await short.close();
  await Promise.all([open.close(), locked.close()]);
});

describe('ESA harvest', () => {
  it('harvests TAP+ (only_tables, per-table detail, esatapplus:size) into a valid document', async () => {
    const out = await createEsaAdapter(http).harvest(ctx(open));
    const doc = validateCapabilityDocument(out.document);
    expect(doc.site.platform).toBe('esa');
    expect(doc.services.map((s) => s.id)).toEqual(['tap', 'datalink']);
    expect(doc.services[0]).toMatchObject({ url: `${open.url}/tap`, upload: true, async: true, maxRec: 3_000_000, auth: ['anonymous', 'cookie'] });
    expect(doc.datasets.map((d) => d.table)).toEqual(['gaiadr3.gaia_source', 'gaiadr3.panstarrs1_best_neighbour', 'gaiadr2.gaia_source']);
    const dr3 = doc.datasets[0];
    expect(dr3).toMatchObject({ id: 'gaiadr3.gaia_source', rows: 400, position: { ra: 'ra', dec: 'dec' }, access: { public: true } });
    expect(dr3.columns?.map((c) => c.name)).toEqual(ESA_TABLES[0].columns.map((c) => c.name));
    expect(open.site.seen.some((r) => r.url === '/tap-server/tap/tables?only_tables=true')).toBe(true);
    expect(open.site.seen.some((r) => r.url === '/tap-server/tap/tables?tables=gaiadr3.gaia_source')).toBe(true);
  });

  it('second harvest is notModified', async () => {
    const adapter = createEsaAdapter(http);
    const first = await adapter.harvest(ctx(open));
    const second = await adapter.harvest(ctx(open), first.validators);
    expect(second.notModified).toBe(true);
    validateCapabilityDocument(second.document);
  });

  it('logs in with basic credentials and uses the JSESSIONID cookie', async () => {
    const anon = await createEsaAdapter(http).harvest(ctx(locked)).catch((e: unknown) => e);
    expect(isConstellationError(anon) && anon.kind).toBe('UPSTREAM_AUTH');
    const bad = await createEsaAdapter(http).harvest(ctx(locked, { kind: 'basic', username: 'gaiauser', password: 'wrong' })).catch((e: unknown) => e);
    expect(isConstellationError(bad) && bad.kind).toBe('UPSTREAM_AUTH');
    const adapter = createEsaAdapter(http);
    const c = ctx(locked, { kind: 'basic', username: 'gaiauser', password: 'gaiapass' });
    const out = await adapter.harvest(c);
    validateCapabilityDocument(out.document);
    expect(locked.sessions.size).toBe(1);
    const tablesReq = locked.site.seen.filter((r) => r.url.startsWith('/tap-server/tap/tables')).at(-1);
    expect(String(tablesReq?.headers.cookie)).toMatch(/^JSESSIONID=/);
    expect(tablesReq?.headers.authorization).toBeUndefined();
    // The same session serves queries.
    const { siteJobId } = await adapter.submitQuery!(c, { adql: 'SELECT COUNT(*) FROM gaiadr3.gaia_source', service: 'tap', mode: 'sync' });
    const doc = await readVOTableToArray((await adapter.jobResult!(c, siteJobId)).body);
    expect(Number(doc.tables[0].rows[0][0])).toBe(400);
    expect(locked.sessions.size).toBe(1);
  });

  it('parses the JSESSIONID out of Set-Cookie', () => {
    expect(sessionCookieOf('JSESSIONID=ABC123; Path=/tap-server; HttpOnly')).toBe('ABC123');
    expect(sessionCookieOf('other=1; Path=/, JSESSIONID=XYZ; Path=/')).toBe('XYZ');
    expect(sessionCookieOf('other=1')).toBeUndefined();
  });

  it('async cone query returns the rows inside the cone', async () => {
    const adapter = createEsaAdapter(http);
    const c = ctx(open);
    const { siteJobId } = await adapter.submitQuery!(c, {
      adql: "SELECT source_id FROM gaiadr3.gaia_source WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 45, 5, 2))",
      service: 'tap',
      mode: 'async',
    });
    // The limit of this wait (PATIENCE_MS) only guards against a job that never ends.
    const s = await waitUntil(() => adapter.jobStatus!(c, siteJobId), (x) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(x.state), { intervalMs: 25 });
    expect(s.state).toBe('COMPLETED');
    const doc = await readVOTableToArray((await adapter.jobResult!(c, siteJobId)).body);
    const r = Math.PI / 180;
    const expected = simRows(ESA_TABLES[0]).filter((row) => {
      const [ra, dec] = [row[2] as number, row[3] as number];
      const cos = Math.sin(5 * r) * Math.sin(dec * r) + Math.cos(5 * r) * Math.cos(dec * r) * Math.cos((ra - 45) * r);
      return Math.acos(Math.min(1, cos)) / r <= 2;
    });
    expect(doc.tables[0].rows.map((x) => x[0]).sort()).toEqual(expected.map((x) => x[1]).sort());
  }, WAITING_TEST_MS);
});

describe('ESA fault modes', () => {
  const cases: [Fault, ErrorKind | 'ok'][] = [
    [{ kind: 'refuse' }, 'UPSTREAM_UNAVAILABLE'],
    [{ kind: 'hang' }, 'UPSTREAM_TIMEOUT'],
    [{ kind: 'status', status: 500 }, 'UPSTREAM'],
    [{ kind: 'rate-limit', retryAfterS: 1, times: 1 }, 'ok'],
    [{ kind: 'malformed-xml' }, 'UPSTREAM_MALFORMED'],
    [{ kind: 'truncate', afterBytes: 200 }, 'UPSTREAM_MALFORMED'],
  ];
  for (const [fault, kind] of cases) {
    it(`${fault.kind} → ${kind}`, async () => {
      await open.site.setFault(fault);
      try {
        const result = await createEsaAdapter(short).harvest(ctx(open)).catch((e: unknown) => e);
        if (kind === 'ok') validateCapabilityDocument((result as { document: unknown }).document);
        else expect(isConstellationError(result) && result.kind).toBe(kind);
      } finally {
        await open.site.setFault({ kind: 'none' });
      }
    });
  }
});
