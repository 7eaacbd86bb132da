import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { createMastAdapter, mastTargets } from '../../adapters/mast/adapter.js';
import type { AdapterContext } from '../../registry/model/adapter.js';
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import type { Fault } from '../sites/sim-site.js';
import { startMastSite, type MastSite } from '../sites/mast-site.js';

let mast: MastSite;
let http: HttpClient;
// Short timeouts make the hang fault quick; queries (which start PGlite) use `http`.
let short: HttpClient;

function ctx(options: Record<string, unknown> = { collections: ['gaiadr3', 'mast_catalogs'] }): AdapterContext {
  return { site: { id: 'mast', name: 'STScI MAST', platform: 'mast', url: mast.url, options }, credential: { kind: 'anonymous' } };
}

beforeAll(async () => {
  mast = await startMastSite({ legacy: true });
  http = new HttpClient({ retries: 1, retryBaseMs: 20 });
  short = new HttpClient({ retries: 1, retryBaseMs: 20, headersTimeoutMs: 600, bodyTimeoutMs: 600, connectTimeoutMs: 600 });
});

afterAll(async () => {
  await http.close();
  await short.close();
  await mast.close();
});

describe('MAST harvest', () => {
  it('harvests each collection as a TAP service, capped at 100,000 rows', async () => {
    const out = await createMastAdapter(http).harvest(ctx());
    const doc = validateCapabilityDocument(out.document);
    expect(doc.services.map((s) => [s.id, s.url, s.maxRec])).toEqual([
      ['gaiadr3', `${mast.url}/gaiadr3`, 100_000],
      ['mast_catalogs', `${mast.url}/mast_catalogs`, 100_000],
    ]);
    expect(doc.datasets.map((d) => [d.service, d.table, d.id])).toEqual([
      ['gaiadr3', 'dbo.gaia_source', 'dbo.gaia_source'],
      ['mast_catalogs', 'ps1_dr2.forced_mean_object', 'ps1_dr2.forced_mean_object'],
      ['mast_catalogs', 'ps1_dr2.stack_object', 'ps1_dr2.stack_object'],
    ]);
    const fmo = doc.datasets[1];
    expect(fmo.position).toEqual({ ra: 'ramean', dec: 'decmean' });
    expect(fmo.columns?.map((c) => c.name)).toEqual(['objid', 'ramean', 'decmean', 'ifpsfmag', 'ifkronmag', 'iflags']);
    expect(fmo.rows).toBe(300);
  });

  it('adds the legacy PS1 DR2 service with its CamelCase names kept', async () => {
    const out = await createMastAdapter(http).harvest(ctx({ collections: ['gaiadr3'], legacyTap: { ps1dr2: mast.legacyUrl } }));
    const doc = validateCapabilityDocument(out.document);
    expect(doc.services.map((s) => s.id)).toEqual(['gaiadr3', 'ps1dr2']);
    const mov = doc.datasets.find((d) => d.service === 'ps1dr2');
    expect(mov).toMatchObject({ id: 'dbo.meanobjectview', table: 'dbo.MeanObjectView', position: { ra: 'raMean', dec: 'decMean' } });
  });

  it('second harvest is notModified; options are checked', async () => {
    const adapter = createMastAdapter(http);
    const first = await adapter.harvest(ctx());
    const second = await adapter.harvest(ctx(), first.validators);
    expect(second.notModified).toBe(true);
    expect(() => mastTargets(ctx({ collections: ['../etc'] }))).toThrow(/collections/);
  });

  it('routes queries to the collection named by SiteQuery.service', async () => {
    const adapter = createMastAdapter(http);
    const c = ctx();
    const { siteJobId } = await adapter.submitQuery!(c, { adql: 'SELECT COUNT(*) FROM ps1_dr2.forced_mean_object WHERE decmean > 5', service: 'mast_catalogs', mode: 'sync' });
    const n = Number((await readVOTableToArray((await adapter.jobResult!(c, siteJobId)).body)).tables[0].rows[0][0]);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(300);
    const err = await adapter.submitQuery!(c, { adql: 'SELECT 1', service: 'nope', mode: 'sync' }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('INVALID_ARGUMENT');
  });

  it('health is UP', async () => {
    expect((await createMastAdapter(http).health(ctx())).status).toBe('UP');
  });
});

describe('MAST fault modes', () => {
  const cases: [Fault, ErrorKind | 'ok'][] = [
    [{ kind: 'refuse' }, 'UPSTREAM_UNAVAILABLE'],
    [{ kind: 'hang' }, 'UPSTREAM_TIMEOUT'],
    [{ kind: 'status', status: 500 }, 'UPSTREAM'],
    [{ kind: 'rate-limit', retryAfterS: 1, times: 2 }, 'ok'],
    [{ kind: 'malformed-xml' }, 'UPSTREAM_MALFORMED'],
    [{ kind: 'truncate', afterBytes: 200 }, 'UPSTREAM_MALFORMED'],
  ];
  for (const [fault, kind] of cases) {
    it(`${fault.kind} → ${kind}`, async () => {
      await mast.site.setFault(fault);
      try {
        const result = await createMastAdapter(short).harvest(ctx()).catch((e: unknown) => e);
        if (kind === 'ok') validateCapabilityDocument((result as { document: unknown }).document);
        else expect(isConstellationError(result) && result.kind).toBe(kind);
      } finally {
        await mast.site.setFault({ kind: 'none' });
      }
    });
  }
});
